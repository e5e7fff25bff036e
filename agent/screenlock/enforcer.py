"""The screen-lock loop: read sessions from logind (plus helper reports), decide, act, record.

Every poll_s (sooner when logind signals a session change, and every 0.2 s
while a lock awaits verification) the enforcer lists all sessions, records
sessions that came and went, merges each session's idle time from logind and
its helper, runs decide.step and carries out the actions: lock via logind
LockSession then the helper's desktop lock; verify; report.

Proof of a lock is logind's LockedHint alone: the helper runs as the session's
user, so its report is evidence recorded beside it (details.helper_locked),
never a substitute; a helper contradicting logind is screenlock.disputed.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from typing import Any, Callable

from baomi.common.events import user_obj
from ..context import AgentContext
from ..decide.screenlock import Action, Policy, SessionMemory, SessionView, logind_idle_s, merge_idle, session_changes, step
from ..discovery.polite import USER_IDLE
from .desktop_settings import settings_drift
from .logind import Logind, LogindSession, LogindUnavailable, SignalWatcher
from .server import HelperConn, HelperServer, proc_login

log = logging.getLogger("baomi.agent.screenlock")

VERIFY_POLL_S = 0.2


def policy_from(ctx: AgentContext) -> Policy:
    c = ctx.config.screenlock
    return Policy(idle_limit_s=float(c.idle_limit_s), verify_s=c.verify_s, on_failure=c.on_failure,
                  absence_min=c.absence_min, absence_action=c.absence_action, helper_grace_s=c.helper_grace_s,
                  # a disagreement that outlives two helper reports is not a report in flight
                  dispute_after_s=2 * helper_report_s(c) + 1.0)


def helper_report_s(c: Any) -> float:
    """How often helpers report (the welcome tells them)."""
    return min(2.0, c.poll_s)


class Enforcer:
    def __init__(self, ctx: AgentContext, server: HelperServer | None = None,
                 logind_factory: Callable[[], Logind] = Logind) -> None:
        self.ctx = ctx
        self.server = server
        self.policy = policy_from(ctx)
        self.poll_s = ctx.config.screenlock.poll_s
        self.retry_s = ctx.config.screenlock.logind_retry_s
        self.logind_factory = logind_factory
        self.logind: Logind | None = None
        self.sessions: dict[str, LogindSession] = {}
        self.memory: dict[str, SessionMemory] = {}
        self.drift_seen: dict[str, frozenset] = {}
        self.available = threading.Event()     # logind reachable
        self.unavailable_reason: str | None = None
        self._wake = threading.Event()
        self._ticked = threading.Condition()
        self._ticks = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._watcher: SignalWatcher | None = None

    # -- lifecycle

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="screenlock", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._watcher:
            self._watcher.stop()
        if self._thread:
            self._thread.join(timeout=10)
        if self.logind:
            self.logind.close()

    def wake(self, *_: Any) -> None:
        self._wake.set()

    # -- hooks for the helper server

    def check_session(self, session_id: str, uid: int, pid: int) -> str | None:
        """Refusal reason for a helper (process pid) claiming (session, uid), or None when plausible."""
        if not self.available.is_set():
            # no logind to ask: the kernel's record of the process's login (set by PAM, inherited) must match
            login = proc_login(pid)
            if login is None:
                return (f"logind is not reachable and process {pid} has no login session in "
                        f"/proc/{pid}/loginuid and sessionid")
            login_uid, login_session = login
            if login_uid != uid or login_session != session_id:
                return (f"logind is not reachable and process {pid} belongs to session {login_session} "
                        f"of uid {login_uid}, not session {session_id} of uid {uid}")
            return None
        s = self.sessions.get(session_id)
        if s is None:  # maybe newer than our last listing: resync once and look again
            self._wait_tick(timeout=self.poll_s + 2)
            s = self.sessions.get(session_id)
        if s is None:
            return f"session {session_id} is not known to logind"
        if s.uid != uid:
            return f"session {session_id} belongs to uid {s.uid}, not {uid}"
        return None

    def helper_gone(self, conn: HelperConn) -> None:
        (self.ctx.status.get(USER_IDLE) or {}).pop(conn.session, None)
        s = self.sessions.get(conn.session)
        if s is None:
            return  # the session ended with its helper: nothing missing
        self.ctx.record("helper.missing", severity="high", user=_user(s), session=_session(s, None),
                        details={"reason": "disconnected", "helper_pid": conn.peer.pid,
                                 "connected_s": round(time.monotonic() - conn.connected_at, 1)})
        mem = self.memory.get(conn.session)
        if mem is not None:  # count the grace period again from now
            self.memory[conn.session] = replace(mem, first_seen=time.monotonic(), helper_missing_reported=True)
        self.wake()

    def helper_state(self, conn: HelperConn) -> None:
        idle_ms = conn.state.get("idle_ms")
        if idle_ms is not None:  # discovery pauses while a user types (agent/discovery/polite.py)
            self.ctx.status.setdefault(USER_IDLE, {})[conn.session] = (idle_ms / 1000.0, time.monotonic())
        settings = conn.state.get("settings")
        if not settings:
            return
        drift = settings_drift(settings, int(self.policy.idle_limit_s))
        key = frozenset((k, str(v["value"])) for k, v in drift.items())
        if drift and self.drift_seen.get(conn.session) != key:
            s = self.sessions.get(conn.session)
            self.ctx.record("screenlock.settings_drift", severity="medium",
                            user=_user(s) if s else user_obj(conn.uid, None, conn.session),
                            session=_session(s, None) if s else {"id": conn.session},
                            details={"source": "session", "desktop": conn.desktop, "keys": drift})
        self.drift_seen[conn.session] = key

    # -- the loop

    def _wait_tick(self, timeout: float) -> None:
        with self._ticked:
            target = self._ticks + 1
            self._wake.set()
            self._ticked.wait_for(lambda: self._ticks >= target or self._stop.is_set(), timeout=timeout)

    def _connect(self) -> bool:
        try:
            lg = self.logind_factory().connect()
        except LogindUnavailable as exc:
            reason = str(exc)
            if self.unavailable_reason is None:
                log.warning("screen lock cannot be enforced: %s; retrying every %ss", reason, self.retry_s)
                self.ctx.record("screenlock.unavailable", severity="high",
                                details={"error": reason, "retry_s": self.retry_s})
            self.unavailable_reason = reason
            return False
        self.logind = lg
        if self.unavailable_reason is not None:
            log.warning("logind reachable again; screen lock enforced")
            self.ctx.record("screenlock.available", details={"after_error": self.unavailable_reason})
        self.unavailable_reason = None
        self.available.set()
        if self._watcher is None:
            self._watcher = SignalWatcher(lg.address, self.wake)
            self._watcher.start()
        return True

    def _run(self) -> None:
        while not self._stop.is_set() and not self.ctx.stopping.is_set():
            if self.logind is None and not self._connect():
                self._stop.wait(self.retry_s)
                continue
            try:
                self.tick()
            except Exception as exc:
                log.warning("logind query failed, reconnecting: %s", exc)
                self.available.clear()
                if self.logind:
                    self.logind.close()
                self.logind = None
                self._stop.wait(1.0)  # a failing bus must not turn this loop into a busy one
                continue
            pending = any(m.lock_sent_at is not None for m in self.memory.values())
            self._wake.wait(VERIFY_POLL_S if pending else self.poll_s)
            self._wake.clear()

    def tick(self) -> None:
        assert self.logind is not None
        listed = self.logind.list_sessions()
        now, wall = time.monotonic(), time.time()
        current = {s.id: s for s in listed if s.class_ in ("user", "")}
        started, ended = session_changes(set(self.sessions), set(current))
        for sid in ended:
            s = self.sessions[sid]
            self.memory.pop(sid, None)
            self.drift_seen.pop(sid, None)
            self.ctx.record("session.ended", user=_user(s), session=_session(s, None))
        for sid in started:
            s = current[sid]
            self.memory[sid] = SessionMemory(first_seen=now)
            self.ctx.record("session.started", user=_user(s), session=_session(s, None),
                            details={"class": s.class_, "remote": s.remote, "active": s.active,
                                     "existing": self._ticks == 0})
        self.sessions = current
        for sid, s in current.items():
            view = self._view(s, now, wall)
            mem, actions = step(self.policy, view, self.memory.get(sid, SessionMemory(first_seen=now)), now)
            self.memory[sid] = mem
            for action in actions:
                self._act(action, s, view)
        with self._ticked:
            self._ticks += 1
            self._ticked.notify_all()

    def _view(self, s: LogindSession, now: float, wall: float) -> SessionView:
        helper = self.server.state(s.id) if self.server else None
        helper_idle = helper["idle_ms"] / 1000.0 if helper and helper.get("idle_ms") is not None else None
        idle = merge_idle(logind_idle_s(s.idle_hint, s.idle_since_mono_us, s.idle_since_us, now, wall), helper_idle)
        helper_locked = helper.get("locked") if helper and isinstance(helper.get("locked"), bool) else None
        connected = self.server.helper_for(s.id) is not None if self.server else False
        # LockedHint is the proof; the helper's word is evidence beside it (docs/screenlock.md)
        return SessionView(id=s.id, uid=s.uid, name=s.name, seat=s.seat, type=s.type, class_=s.class_,
                           idle_s=idle, locked=s.locked_hint, helper=connected, helper_locked=helper_locked)

    # -- effects

    def _act(self, a: Action, s: LogindSession, view: SessionView) -> None:
        user, session = _user(s), _session(s, view.idle_s)
        if a.kind == "lock":
            error = None
            try:
                self.logind.lock_session(s.id)  # type: ignore[union-attr]
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                log.warning("LockSession(%s) failed: %s", s.id, error)
            if self.server and self.server.helper_for(s.id):
                threading.Thread(target=self._helper_lock, args=(s.id,), daemon=True).start()
            log.info("locking idle session %s of %s (idle %.1fs, attempt %s)", s.id, s.name,
                     view.idle_s or 0, a.details["attempt"])
            if error:
                a.details["logind_error"] = error
        elif a.kind == "enforced":
            self.ctx.record("screenlock.enforced", user=user, session=session,
                            rule="screenlock.idle_limit",
                            details={**a.details, "idle_limit_s": self.policy.idle_limit_s,
                                     "helper": view.helper, "helper_locked": view.helper_locked})
        elif a.kind == "failed":
            log.warning("session %s of %s did not lock within %ss", s.id, s.name, self.policy.verify_s)
            self.ctx.record("screenlock.failed", severity="high", user=user, session=session,
                            rule="screenlock.idle_limit",
                            details={**a.details, "idle_limit_s": self.policy.idle_limit_s,
                                     "helper": view.helper, "locked_hint": s.locked_hint,
                                     "helper_locked": view.helper_locked})
        elif a.kind == "disputed":
            h = self.server.helper_for(s.id) if self.server else None
            log.warning("session %s of %s: logind says %s, its helper says %s", s.id, s.name,
                        "locked" if a.details["logind_locked"] else "unlocked",
                        "locked" if a.details["helper_locked"] else "unlocked")
            self.ctx.record("screenlock.disputed", severity="high", user=user, session=session,
                            rule="screenlock.idle_limit",
                            process={"pid": h.peer.pid} if h else None,
                            details={**a.details, "proof": "logind",
                                     "helper_pid": h.peer.pid if h else None,
                                     "desktop": h.desktop if h else None})
        elif a.kind == "terminate":
            self._terminate(s, user, session, "screenlock.failed")
        elif a.kind == "helper_missing":
            self.ctx.record("helper.missing", severity="high", user=user, session=session, details=a.details)
        elif a.kind == "absence_warn":
            minutes = self.policy.absence_min
            what = {"logout": "logged out", "poweroff": "powered off", "suspend": "suspended"}[a.details["action"]]
            self._notify(s.uid, "Idle session", f"No activity for almost {minutes} minutes: this session "
                         f"will be {what} in about a minute.", "critical")
            self.ctx.record("screenlock.absence_warning", user=user, session=session, details=a.details)
        elif a.kind == "absence":
            self._absence(s, user, session, a.details)

    def _absence(self, s: LogindSession, user: dict, session: dict, details: dict) -> None:
        """Record, then act: the record is the evidence even when the host goes down with it."""
        action = details["action"]
        self.ctx.record("screenlock.absence", severity="medium", user=user, session=session,
                        rule="screenlock.absence", action=action, details=details)
        if action == "logout":
            self._terminate(s, user, session, "screenlock.absence")
        elif action in ("poweroff", "suspend"):
            try:
                (self.logind.power_off if action == "poweroff" else self.logind.suspend)()  # type: ignore[union-attr]
            except Exception as exc:
                log.warning("absence %s failed: %s", action, exc)
                self.ctx.record("screenlock.failed", severity="high", user=user, session=session,
                                rule="screenlock.absence", details={**details, "error": f"{type(exc).__name__}: {exc}"})

    def _terminate(self, s: LogindSession, user: dict, session: dict, reason: str) -> None:
        error = None
        try:
            self.logind.terminate_session(s.id)  # type: ignore[union-attr]
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        self.ctx.record("session.terminated", severity="high" if error else "medium", user=user,
                        session=session, rule=reason, details={"error": error})

    def _helper_lock(self, session_id: str) -> None:
        ok = self.server.lock(session_id) if self.server else None
        if ok is False:
            log.warning("helper of session %s could not lock the desktop", session_id)
        self.wake()

    def _notify(self, uid: int, summary: str, body: str, urgency: str) -> bool:
        for fn in list(self.ctx.notifiers):
            try:
                if fn(uid, summary, body, urgency):
                    return True
            except Exception:
                log.exception("notifier failed")
        return False


def _user(s: LogindSession) -> dict[str, Any]:
    return user_obj(s.uid, s.name, s.id)


def _session(s: LogindSession, idle_s: float | None) -> dict[str, Any]:
    return {"id": s.id, "seat": s.seat, "type": s.type,
            "idle_s": round(idle_s, 3) if idle_s is not None else None}
