"""The screen-lock decisions, pure: what to do with one session at one moment.

Inputs are plain values (a SessionView built from logind and the helper's
report, the per-session memory of what was already done, the policy, "now" on
the monotonic clock); the output is the new memory plus a list of actions for
the enforcer to carry out. No I/O here, so every rule is tested directly.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

GRAPHICAL_TYPES = frozenset({"x11", "wayland", "mir"})


@dataclass(frozen=True)
class Policy:
    idle_limit_s: float = 300.0
    verify_s: float = 5.0
    on_failure: Literal["retry", "terminate"] = "retry"
    absence_min: int = 0
    absence_action: Literal["audit", "suspend", "logout", "poweroff"] = "logout"
    helper_grace_s: float = 60.0
    # longest wait between two lock attempts of a session that will not lock
    max_retry_s: float = 60.0
    # logind and the helper disagreeing about the lock for this long is a screenlock.disputed
    dispute_after_s: float = 2.0


@dataclass(frozen=True)
class SessionView:
    """What is known about a session right now (logind merged with its helper).

    `locked` is logind's LockedHint and the only proof of a lock; `helper_locked`
    is what the session's helper reports (None: no report), evidence beside it.
    """
    id: str
    uid: int
    name: str
    seat: str = ""
    type: str = ""
    class_: str = "user"
    idle_s: float | None = None   # None: nobody reports idleness
    locked: bool = False
    helper: bool = False          # a helper of this session is connected
    helper_locked: bool | None = None

    @property
    def graphical(self) -> bool:
        return self.type in GRAPHICAL_TYPES and self.class_ in ("user", "")


@dataclass(frozen=True)
class SessionMemory:
    first_seen: float = 0.0
    crossed_at: float | None = None     # when idleness crossed the limit (monotonic)
    lock_sent_at: float | None = None   # last lock attempt awaiting verification
    next_lock_at: float | None = None   # after a failure: when to try again
    attempts: int = 0
    locked: bool = False
    absence_warned: bool = False
    absence_done: bool = False
    helper_missing_reported: bool = False
    terminated: bool = False
    disagree_since: float | None = None  # logind and the helper disagree about the lock since then
    disputed_attempt: int | None = None  # the lock attempt (mem.attempts) last reported as disputed


@dataclass(frozen=True)
class Action:
    """kind: lock | enforced | failed | terminate | absence_warn | absence | helper_missing | disputed"""
    kind: str
    session_id: str
    details: dict = field(default_factory=dict)


def merge_idle(logind_idle_s: float | None, helper_idle_s: float | None) -> float | None:
    """The larger of the known idle times: either source saying "idle" is enough to lock."""
    known = [v for v in (logind_idle_s, helper_idle_s) if v is not None]
    return max(known) if known else None


def logind_idle_s(idle_hint: bool, since_mono_us: int, since_us: int, now_mono: float, now_wall: float) -> float | None:
    """Seconds idle from logind's hints; None when the session is not idle (or nobody says)."""
    if not idle_hint:
        return None
    if since_mono_us > 0:
        return max(0.0, now_mono - since_mono_us / 1e6)
    if since_us > 0:
        return max(0.0, now_wall - since_us / 1e6)
    return None


def step(policy: Policy, view: SessionView, mem: SessionMemory, now: float) -> tuple[SessionMemory, list[Action]]:
    """One decision for one session. `now` is monotonic seconds."""
    actions: list[Action] = []
    if not view.graphical or mem.terminated:
        return mem, actions

    # helper presence: a graphical session should have one after the grace period
    if view.helper:
        mem = replace(mem, helper_missing_reported=False)
    elif not mem.helper_missing_reported and now - mem.first_seen >= policy.helper_grace_s:
        actions.append(Action("helper_missing", view.id, {"reason": "not connected",
                                                          "grace_s": policy.helper_grace_s}))
        mem = replace(mem, helper_missing_reported=True)

    # the helper contradicting logind about the lock: once per lock attempt, after it has persisted
    if view.helper_locked is not None and view.helper_locked != view.locked:
        since = mem.disagree_since if mem.disagree_since is not None else now
        mem = replace(mem, disagree_since=since)
        if now - since >= policy.dispute_after_s and mem.disputed_attempt != mem.attempts:
            actions.append(Action("disputed", view.id, {
                "logind_locked": view.locked, "helper_locked": view.helper_locked,
                "attempt": mem.attempts, "for_s": round(now - since, 3)}))
            mem = replace(mem, disputed_attempt=mem.attempts)
    elif mem.disagree_since is not None:
        mem = replace(mem, disagree_since=None)

    idle = view.idle_s if view.idle_s is not None else 0.0
    over = idle >= policy.idle_limit_s

    if not over and not view.locked:
        # the user is active again: forget the lock cycle
        mem = replace(mem, crossed_at=None, lock_sent_at=None, next_lock_at=None, attempts=0, locked=False)
    elif over:
        crossed = mem.crossed_at if mem.crossed_at is not None else now - (idle - policy.idle_limit_s)
        mem = replace(mem, crossed_at=crossed)
        if view.locked:
            if not mem.locked:
                actions.append(Action("enforced", view.id, {
                    "by": "agent" if mem.attempts else "desktop",
                    "attempts": mem.attempts,
                    "latency_s": round(max(0.0, now - crossed), 3),
                    "idle_s": round(idle, 3)}))
            mem = replace(mem, locked=True, lock_sent_at=None, next_lock_at=None)
        elif mem.lock_sent_at is None and (mem.next_lock_at is None or now >= mem.next_lock_at):
            actions.append(Action("lock", view.id, {"attempt": mem.attempts + 1, "idle_s": round(idle, 3)}))
            mem = replace(mem, lock_sent_at=now, attempts=mem.attempts + 1, locked=False)
        elif mem.lock_sent_at is not None and now - mem.lock_sent_at >= policy.verify_s:
            actions.append(Action("failed", view.id, {
                "attempt": mem.attempts, "verify_s": policy.verify_s,
                "waited_s": round(now - mem.lock_sent_at, 3),
                "idle_s": round(idle, 3), "follow_up": policy.on_failure}))
            if policy.on_failure == "terminate":
                actions.append(Action("terminate", view.id, {"reason": "lock did not take effect"}))
                return replace(mem, lock_sent_at=None, terminated=True), actions
            wait = min(policy.verify_s * 2 ** max(0, mem.attempts - 1), policy.max_retry_s)
            mem = replace(mem, lock_sent_at=None, next_lock_at=now + wait)
    else:
        # locked and under the limit (locked by hand, or idle counter reset by the locker)
        mem = replace(mem, locked=True, lock_sent_at=None, next_lock_at=None)

    # absence rule (002 "员工外出半小时以上需关闭电脑"): idle far beyond the lock → warn a minute
    # before (unless only recorded: nothing will happen to warn of), then act
    if policy.absence_min > 0:
        limit = policy.absence_min * 60.0
        if idle < limit - 60.0:
            mem = replace(mem, absence_warned=False, absence_done=False)
        else:
            if not mem.absence_warned and policy.absence_action != "audit":
                actions.append(Action("absence_warn", view.id, {
                    "in_s": round(max(0.0, limit - idle), 1), "action": policy.absence_action}))
            mem = replace(mem, absence_warned=True)
            if idle >= limit and not mem.absence_done:
                actions.append(Action("absence", view.id, {"action": policy.absence_action,
                                                           "idle_s": round(idle, 3),
                                                           "absence_min": policy.absence_min}))
                mem = replace(mem, absence_done=True)
    return mem, actions


def session_changes(before: set[str], after: set[str]) -> tuple[list[str], list[str]]:
    """(started, ended) session ids between two listings, sorted for stable output."""
    return sorted(after - before), sorted(before - after)
