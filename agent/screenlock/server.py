"""The daemon's side of the helper socket.

Every user may connect (the socket is 0666), so nothing a helper says about
itself is trusted: its claimed uid must equal the kernel's SO_PEERCRED uid, and
its claimed session must exist and belong to that uid (checked by the
enforcer against logind, or against the peer's /proc login session when logind
is down) and match the peer's cgroup when that names a session. A session's
helper is never replaced by a helper of another uid. A helper that lies is
refused and recorded as helper.rejected.

Any local user can connect, so the socket is bounded per connecting uid: open
connections (HelperLimits.max_per_uid), new connections per second (a token
bucket of rate_per_s with burst), and helper.rejected events (the first at
once, then at most one per rejected_interval_s with the count it stands for).
One thread serves every connection through a selector; session checks, which
may wait for the enforcer's next logind listing, run on a pool of
CHECK_WORKERS threads, so the daemon's thread count does not grow with the
number of connections.
"""
from __future__ import annotations

import logging
import os
import queue
import re
import selectors
import socket
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from baomi.common.events import user_obj
from ..procinfo import user_name
from .protocol import (URGENCIES, LineReader, PeerCred, ProtocolError, check_hello, decode, encode,
                       peer_credentials)

log = logging.getLogger("baomi.agent.screenlock")

Record = Callable[..., Any]
# (session id, uid, peer pid) -> None when the claim is plausible, else the reason to refuse it
SessionCheck = Callable[[str, int, int], "str | None"]

HELLO_TIMEOUT_S = 5.0   # a connection must say hello within this long
SEND_TIMEOUT_S = 3.0    # a request to a helper that does not read its socket gives up after this
CHECK_WORKERS = 2       # threads running session checks


@dataclass(frozen=True)
class HelperLimits:
    max_per_uid: int
    rate_per_s: float
    burst: int
    rejected_interval_s: float

    @classmethod
    def from_config(cls, cfg: Any = None) -> "HelperLimits":
        if cfg is None:
            from ..config import ScreenlockSection
            cfg = ScreenlockSection()
        return cls(max_per_uid=cfg.helper_max_connections_per_uid, rate_per_s=cfg.helper_connect_rate_per_s,
                   burst=cfg.helper_connect_burst, rejected_interval_s=cfg.helper_rejected_interval_s)



def cgroup_session(pid: int) -> str | None:
    """The logind session named by a process's cgroup (…/session-3.scope), if any."""
    try:
        text = Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return None
    m = re.search(r"/session-([^/\s]+)\.scope", text)
    return m.group(1) if m else None


@dataclass
class HelperConn:
    sock: socket.socket
    peer: PeerCred
    uid: int
    session: str
    desktop: str
    connected_at: float = field(default_factory=time.monotonic)
    state: dict[str, Any] = field(default_factory=dict)
    state_at: float = 0.0
    _next_id: int = 0
    _pending: dict[int, tuple[threading.Event, dict]] = field(default_factory=dict)
    _wlock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, msg: dict[str, Any]) -> None:
        with self._wlock:
            self.sock.sendall(encode(msg))

    def send_nowait(self, msg: dict[str, Any]) -> bool:
        """Send without blocking (the server's own thread must never wait for one helper)."""
        if not self._wlock.acquire(blocking=False):
            return False
        try:
            return _send_nowait(self.sock, msg)
        finally:
            self._wlock.release()

    def request(self, msg: dict[str, Any], timeout: float) -> dict[str, Any] | None:
        """Send a request and wait for its result; None on timeout or a closed socket."""
        with self._wlock:
            self._next_id += 1
            rid = self._next_id
            done: tuple[threading.Event, dict] = (threading.Event(), {})
            self._pending[rid] = done
        try:
            self.send({**msg, "id": rid})
            if not done[0].wait(timeout):
                return None
            return done[1]
        except OSError:
            return None
        finally:
            self._pending.pop(rid, None)

    def resolve(self, msg: dict[str, Any]) -> None:
        waiter = self._pending.get(msg.get("id"))  # type: ignore[arg-type]
        if waiter:
            waiter[1].update(msg)
            waiter[0].set()


def proc_login(pid: int) -> tuple[int, str] | None:
    """(loginuid, audit session id) of a process from /proc, or None when unset or unreadable.

    logind names a session after the kernel's audit session id when there is
    one, so this is the session a process was logged in with, set by PAM at
    login and inherited; an unprivileged process cannot change it.
    """
    try:
        loginuid = int(Path(f"/proc/{pid}/loginuid").read_text().strip())
        sessionid = int(Path(f"/proc/{pid}/sessionid").read_text().strip())
    except (OSError, ValueError):
        return None
    if loginuid == UNSET_ID or sessionid == UNSET_ID:
        return None
    return loginuid, str(sessionid)


UNSET_ID = 0xFFFFFFFF


@dataclass
class _Pending:
    """A connection between accept and welcome."""
    sock: socket.socket
    peer: PeerCred
    reader: LineReader
    deadline: float
    checking: bool = False


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class _Rejections:
    """One uid's refusals since its last helper.rejected event."""
    last_event_at: float
    count: int = 0
    reasons: Counter = field(default_factory=Counter)
    sample: dict[str, Any] | None = None


class HelperServer:
    def __init__(self, path: Path, record: Record, check_session: SessionCheck | None = None,
                 report_s: float = 2.0, on_state: Callable[[HelperConn], None] | None = None,
                 on_disconnect: Callable[[HelperConn], None] | None = None,
                 limits: HelperLimits | None = None) -> None:
        self.path = Path(path)
        self.record = record
        self.check_session = check_session or (lambda _s, _u, _p: None)
        self.report_s = report_s
        self.on_state = on_state
        self.on_disconnect = on_disconnect
        self.limits = limits or HelperLimits.from_config()
        self.helpers: dict[str, HelperConn] = {}   # by session id
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._sel: selectors.BaseSelector | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._checked: queue.SimpleQueue = queue.SimpleQueue()
        self._pool: ThreadPoolExecutor | None = None
        self._pending: dict[int, _Pending] = {}     # by fd
        self._conns: dict[int, HelperConn] = {}     # welcomed, by fd
        self._per_uid: Counter = Counter()          # open connections (pending and welcomed) by uid
        self._buckets: dict[int, _Bucket] = {}
        self._rejections: dict[int, _Rejections] = {}

    # -- lifecycle

    def start(self) -> None:
        if not self.path.parent.exists():
            # helpers of every user must reach the socket; an existing folder is left as the admin made it
            self.path.parent.mkdir(parents=True)
            os.chmod(self.path.parent, 0o755)
        if self.path.exists() or self.path.is_symlink():
            self.path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(self.path))
        os.chmod(self.path, 0o666)  # every desktop user's helper connects; peers are checked
        sock.listen(64)
        sock.setblocking(False)
        self._sock = sock
        self._sel = selectors.DefaultSelector()
        self._sel.register(sock, selectors.EVENT_READ, "accept")
        self._wake_r.setblocking(False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._pool = ThreadPoolExecutor(max_workers=CHECK_WORKERS, thread_name_prefix="screenlock-check")
        self._thread = threading.Thread(target=self._loop, name="screenlock-helpers", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wakeup()
        if self._thread:
            self._thread.join(timeout=5)
        if self._pool:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._flush_rejections(force=True)
        try:
            self.path.unlink()
        except OSError:
            pass

    # -- what the enforcer and the notifier use

    def helper_for(self, session_id: str) -> HelperConn | None:
        with self._lock:
            return self.helpers.get(session_id)

    def state(self, session_id: str, max_age_s: float | None = None) -> dict[str, Any] | None:
        """The helper's last report for a session, if recent enough."""
        h = self.helper_for(session_id)
        if h is None or not h.state_at:
            return None
        max_age = max_age_s if max_age_s is not None else 3 * self.report_s + 1
        if time.monotonic() - h.state_at > max_age:
            return None
        return dict(h.state)

    def lock(self, session_id: str, timeout: float = 3.0) -> bool | None:
        """Ask the session's helper to lock; None when no helper is connected."""
        h = self.helper_for(session_id)
        if h is None:
            return None
        reply = h.request({"type": "lock"}, timeout)
        return bool(reply and reply.get("ok"))

    def notify(self, uid: int, summary: str, body: str, urgency: str = "normal", timeout: float = 3.0) -> bool:
        """Show a desktop notification through every helper of this uid; True if one showed it."""
        if urgency not in URGENCIES:
            urgency = "normal"
        with self._lock:
            conns = [h for h in self.helpers.values() if h.uid == uid]
        shown = False
        for h in conns:
            reply = h.request({"type": "notify", "summary": summary, "body": body, "urgency": urgency}, timeout)
            shown = shown or bool(reply and reply.get("ok"))
        return shown

    def connections(self, uid: int) -> int:
        """Open connections of a uid (pending hellos and welcomed helpers)."""
        with self._lock:
            return self._per_uid.get(uid, 0)

    # -- the loop (one thread for every connection)

    def _wakeup(self) -> None:
        try:
            self._wake_w.send(b"x", socket.MSG_DONTWAIT)
        except OSError:
            pass  # a wake-up is already pending

    def _loop(self) -> None:
        assert self._sel is not None
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                deadlines = [p.deadline for p in self._pending.values() if not p.checking]
                timeout = min([0.5, *(d - now for d in deadlines)])
                for key, _ in self._sel.select(max(0.0, timeout)):
                    if self._stop.is_set():
                        break
                    try:
                        if key.data == "accept":
                            self._accept()
                        elif key.data == "wake":
                            self._drain_wake()
                        elif isinstance(key.data, _Pending):
                            self._hello(key.data)
                        else:
                            self._read(key.data)
                    except Exception:  # one connection must not end the loop for all
                        log.exception("helper socket: unexpected error")
                self._expire(time.monotonic())
                self._flush_rejections()
        finally:
            self._shutdown()

    def _shutdown(self) -> None:
        for p in list(self._pending.values()):
            _close(p.sock)
        for c in list(self._conns.values()):
            _close(c.sock)
        self._pending.clear()
        self._conns.clear()
        with self._lock:
            self.helpers.clear()
            self._per_uid.clear()
        if self._sock:
            _close(self._sock)
        if self._sel:
            self._sel.close()
        for s in (self._wake_r, self._wake_w):
            s.close()

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096, socket.MSG_DONTWAIT):
                pass
        except OSError:
            pass
        while True:
            try:
                pending, hello, lines, problem = self._checked.get_nowait()
            except queue.Empty:
                return
            self._checked_hello(pending, hello, lines, problem)

    def _accept(self) -> None:
        assert self._sock is not None
        for _ in range(64):  # what is queued now; the selector says when there is more
            try:
                sock, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("helper socket accept failed: %s", exc)
                return
            try:
                peer = peer_credentials(sock)
            except OSError:
                _close(sock)
                continue
            refusal = self._admit(peer.uid, time.monotonic())
            if refusal:
                self._reject(sock, peer, refusal[0], refusal[1], {})
                continue
            sock.setblocking(False)
            pending = _Pending(sock, peer, LineReader(sock), time.monotonic() + HELLO_TIMEOUT_S)
            self._pending[sock.fileno()] = pending
            with self._lock:
                self._per_uid[peer.uid] += 1
            self._sel.register(sock, selectors.EVENT_READ, pending)  # type: ignore[union-attr]

    def _admit(self, uid: int, now: float) -> tuple[str, str] | None:
        """(category, reason) to refuse a new connection of this uid, or None."""
        lim = self.limits
        b = self._buckets.get(uid)
        if b is None:
            b = self._buckets[uid] = _Bucket(float(lim.burst), now)
        b.tokens = min(float(lim.burst), b.tokens + (now - b.at) * lim.rate_per_s)
        b.at = now
        if b.tokens < 1.0:
            return "rate_limit", f"uid {uid} opens connections faster than {lim.rate_per_s:g}/s"
        b.tokens -= 1.0
        if self.connections(uid) >= lim.max_per_uid:
            return "too_many_connections", f"uid {uid} already has {lim.max_per_uid} connections open"
        if len(self._buckets) > 4096:  # forget full buckets of uids long gone
            for u in [u for u, x in self._buckets.items() if x.tokens >= lim.burst and u != uid]:
                del self._buckets[u]
        return None

    def _forget(self, fd: int, sock: socket.socket, uid: int) -> None:
        self._pending.pop(fd, None)
        self._conns.pop(fd, None)
        try:
            self._sel.unregister(sock)  # type: ignore[union-attr]
        except (KeyError, ValueError, OSError):
            pass
        with self._lock:
            self._per_uid[uid] -= 1
            if self._per_uid[uid] <= 0:
                del self._per_uid[uid]
        _close(sock)

    def _expire(self, now: float) -> None:
        for fd, p in list(self._pending.items()):
            if not p.checking and now >= p.deadline:
                self._refuse(p, "bad_hello", "bad hello: timed out", {})

    # -- hello

    def _hello(self, p: _Pending) -> None:
        fd = p.sock.fileno()
        try:
            got = p.reader.read()
        except BlockingIOError:
            return
        except (OSError, ProtocolError) as exc:
            self._forget(fd, p.sock, p.peer.uid)
            self._count_rejection(p.peer, "bad_hello", f"bad hello: {exc}", {})
            return
        if got is None:
            self._forget(fd, p.sock, p.peer.uid)
            return
        if not got:
            return  # no complete line yet
        try:
            hello = decode(got[0])
            uid, session = check_hello(hello)
        except ProtocolError as exc:
            self._refuse(p, "bad_hello", f"bad hello: {exc}", {})
            return
        claimed = {"uid": uid, "session": session}
        if uid != p.peer.uid:
            self._refuse(p, "uid_mismatch", f"claimed uid {uid} but the socket peer is uid {p.peer.uid}", claimed)
            return
        scope = cgroup_session(p.peer.pid)
        if scope is not None and scope != session:
            self._refuse(p, "cgroup_mismatch",
                         f"claimed session {session} but the process runs in session {scope}", claimed)
            return
        # the session check may wait for the enforcer's next logind listing: not on this thread
        p.checking = True
        self._sel.unregister(p.sock)  # type: ignore[union-attr]
        assert self._pool is not None

        def check() -> None:
            try:
                problem = self.check_session(session, uid, p.peer.pid)
            except Exception as exc:
                problem = f"session check failed: {type(exc).__name__}: {exc}"
            self._checked.put((p, hello, got, problem))
            self._wakeup()

        try:
            self._pool.submit(check)
        except RuntimeError:  # shutting down
            self._forget(fd, p.sock, p.peer.uid)

    def _checked_hello(self, p: _Pending, hello: dict, lines: list[bytes], problem: str | None) -> None:
        fd = p.sock.fileno()
        if fd < 0 or self._pending.get(fd) is not p:
            return  # closed meanwhile
        uid, session = hello["uid"], hello["session"]
        claimed = {"uid": uid, "session": session}
        if problem:
            self._refuse(p, "session_check", problem, claimed)
            return
        with self._lock:
            old = self.helpers.get(session)
        if old is not None and old.uid != uid:
            self._refuse(p, "session_taken", f"session {session} already has a helper of uid {old.uid}", claimed)
            return
        conn = HelperConn(p.sock, p.peer, uid, session, str(hello.get("desktop", ""))[:32])
        if not _send_nowait(p.sock, {"type": "welcome", "report_s": self.report_s}):
            self._forget(fd, p.sock, p.peer.uid)
            return
        p.sock.settimeout(SEND_TIMEOUT_S)  # requests from other threads; reads happen only when ready
        del self._pending[fd]
        self._conns[fd] = conn
        self._sel.register(p.sock, selectors.EVENT_READ, (conn, p.reader))  # type: ignore[union-attr]
        with self._lock:
            self.helpers[session] = conn
        if old is not None:  # a second helper in the same session (autostart and user unit): newest wins
            old.send_nowait({"type": "replaced"})
            self._drop(old)
        log.info("helper connected: uid %s session %s (%s)", conn.uid, conn.session, conn.desktop or "?")
        for extra in lines[1:]:
            self._handle(conn, extra)

    # -- welcomed helpers

    def _read(self, data: tuple[HelperConn, LineReader]) -> None:
        conn, reader = data
        try:
            lines = reader.read()
        except (BlockingIOError, socket.timeout):
            return
        except (OSError, ProtocolError):
            lines = None
        if lines is None:
            self._drop(conn)
            return
        for line in lines:
            self._handle(conn, line)

    def _drop(self, conn: HelperConn) -> None:
        fd = conn.sock.fileno()
        if fd < 0 or self._conns.get(fd) is not conn:
            return
        with self._lock:
            current = self.helpers.get(conn.session) is conn
            if current:
                del self.helpers[conn.session]
        self._forget(fd, conn.sock, conn.uid)
        if current and not self._stop.is_set() and self.on_disconnect:
            self.on_disconnect(conn)

    def _handle(self, conn: HelperConn, line: bytes) -> None:
        try:
            msg = decode(line)
        except ProtocolError as exc:
            log.warning("helper of session %s sent a bad line: %s", conn.session, exc)
            return
        if msg["type"] == "state":
            conn.state = {"idle_ms": _num(msg.get("idle_ms")), "locked": msg.get("locked"),
                          "settings": msg.get("settings") if isinstance(msg.get("settings"), dict) else None}
            conn.state_at = time.monotonic()
            if self.on_state:
                self.on_state(conn)
        elif msg["type"] == "result":
            conn.resolve(msg)

    # -- refusals

    def _refuse(self, p: _Pending, category: str, reason: str, claimed: dict[str, Any]) -> None:
        """Refuse a pending connection: tell it why, close it, count it."""
        self._count_rejection(p.peer, category, reason, claimed)  # recorded before the peer hears of it
        _send_nowait(p.sock, {"type": "rejected", "reason": reason})
        self._forget(p.sock.fileno(), p.sock, p.peer.uid)

    def _reject(self, sock: socket.socket, peer: PeerCred, category: str, reason: str,
                claimed: dict[str, Any]) -> None:
        """Refuse a connection never admitted (over the uid's limits)."""
        self._count_rejection(peer, category, reason, claimed)
        _send_nowait(sock, {"type": "rejected", "reason": reason})
        try:  # a hello already queued, read away so that closing does not reset the connection
            sock.recv(65536, socket.MSG_DONTWAIT)
        except OSError:
            pass
        _close(sock)

    def _count_rejection(self, peer: PeerCred, category: str, reason: str, claimed: dict[str, Any]) -> None:
        now = time.monotonic()
        sample = {"peer": peer, "reason": reason, "claimed": claimed, "exe": _exe(peer.pid)}
        r = self._rejections.get(peer.uid)
        if r is None:  # the first refusal of a quiet uid is recorded at once
            log.warning("helper rejected (pid %s uid %s): %s", peer.pid, peer.uid, reason)
            self._rejections[peer.uid] = _Rejections(last_event_at=now)
            self._record_rejected(sample, 1, Counter({category: 1}))
            return
        log.debug("helper rejected (pid %s uid %s): %s", peer.pid, peer.uid, reason)
        r.count += 1
        r.reasons[category] += 1
        if r.sample is None:
            r.sample = sample

    def _flush_rejections(self, force: bool = False) -> None:
        now = time.monotonic()
        for uid, r in list(self._rejections.items()):
            if not force and now - r.last_event_at < self.limits.rejected_interval_s:
                continue
            if r.count and r.sample is not None:
                log.warning("helper rejected %s more times (uid %s) in the last %.0fs: %s", r.count, uid,
                            now - r.last_event_at, dict(r.reasons))
                self._record_rejected(r.sample, r.count, r.reasons)
                self._rejections[uid] = _Rejections(last_event_at=now)
            else:
                del self._rejections[uid]

    def _record_rejected(self, sample: dict[str, Any], count: int, reasons: Counter) -> None:
        peer, claimed = sample["peer"], sample["claimed"]
        try:
            self.record("helper.rejected", severity="high",
                        user=user_obj(peer.uid, user_name(peer.uid), claimed.get("session")),
                        session={"id": claimed.get("session")} if claimed.get("session") else None,
                        process={"pid": peer.pid, "exe": sample["exe"]},
                        details={"reason": sample["reason"], "peer_uid": peer.uid, "peer_pid": peer.pid,
                                 "claimed_uid": claimed.get("uid"), "claimed_session": claimed.get("session"),
                                 "count": count, "reasons": dict(reasons),
                                 "interval_s": self.limits.rejected_interval_s})
        except Exception:
            log.exception("helper.rejected could not be recorded")


def _send_nowait(sock: socket.socket, msg: dict[str, Any]) -> bool:
    data = encode(msg)
    try:
        return sock.send(data, socket.MSG_DONTWAIT) == len(data)
    except OSError:
        return False


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 else None


def _exe(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
