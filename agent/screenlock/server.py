"""The daemon's side of the helper socket.

Every user may connect (the socket is 0666), so nothing a helper says about
itself is trusted: its claimed uid must equal the kernel's SO_PEERCRED uid, and
its claimed session must exist and belong to that uid (checked by the
enforcer against logind) and match the peer's cgroup when that names a
session. A helper that lies is refused and recorded as helper.rejected.
"""
from __future__ import annotations

import logging
import os
import pwd
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .protocol import (URGENCIES, LineReader, PeerCred, ProtocolError, check_hello, decode, encode,
                       peer_credentials)

log = logging.getLogger("baomi.agent.screenlock")

Record = Callable[..., Any]
# (session id, uid) -> None when the claim is plausible, else the reason to refuse it
SessionCheck = Callable[[str, int], "str | None"]


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


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


class HelperServer:
    def __init__(self, path: Path, record: Record, check_session: SessionCheck | None = None,
                 report_s: float = 2.0, on_state: Callable[[HelperConn], None] | None = None,
                 on_disconnect: Callable[[HelperConn], None] | None = None) -> None:
        self.path = Path(path)
        self.record = record
        self.check_session = check_session or (lambda _s, _u: None)
        self.report_s = report_s
        self.on_state = on_state
        self.on_disconnect = on_disconnect
        self.helpers: dict[str, HelperConn] = {}   # by session id
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._threads: list[threading.Thread] = []

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
        sock.listen(16)
        sock.settimeout(0.5)
        self._sock = sock
        t = threading.Thread(target=self._accept_loop, name="screenlock-helpers", daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            conns = list(self.helpers.values())
        for c in conns:
            _close(c.sock)
        if self._sock:
            _close(self._sock)
        for t in self._threads:
            t.join(timeout=2)
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

    # -- connections

    def _accept_loop(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                time.sleep(0.2)
                continue
            t = threading.Thread(target=self._serve, args=(conn,), name="screenlock-helper", daemon=True)
            t.start()

    def _reject(self, sock: socket.socket, peer: PeerCred, reason: str, claimed: dict[str, Any]) -> None:
        log.warning("helper rejected (pid %s uid %s): %s", peer.pid, peer.uid, reason)
        self.record("helper.rejected", severity="high",
                    user={"uid": peer.uid, "name": user_name(peer.uid), "session": claimed.get("session")},
                    session={"id": claimed.get("session")} if claimed.get("session") else None,
                    process={"pid": peer.pid, "exe": _exe(peer.pid)},
                    details={"reason": reason, "peer_uid": peer.uid, "peer_pid": peer.pid,
                             "claimed_uid": claimed.get("uid"), "claimed_session": claimed.get("session")})
        try:
            sock.sendall(encode({"type": "rejected", "reason": reason}))
        except OSError:
            pass
        _close(sock)

    def _handshake(self, sock: socket.socket, reader: LineReader) -> HelperConn | None:
        peer = peer_credentials(sock)
        sock.settimeout(5.0)
        lines: list[bytes] = []
        try:
            while not lines:
                got = reader.read()
                if got is None:
                    _close(sock)
                    return None
                lines = got
            hello = decode(lines[0])
            uid, session = check_hello(hello)
        except (ProtocolError, socket.timeout, OSError) as exc:
            self._reject(sock, peer, f"bad hello: {exc}", {})
            return None
        claimed = {"uid": uid, "session": session}
        if uid != peer.uid:
            self._reject(sock, peer, f"claimed uid {uid} but the socket peer is uid {peer.uid}", claimed)
            return None
        scope = cgroup_session(peer.pid)
        if scope is not None and scope != session:
            self._reject(sock, peer, f"claimed session {session} but the process runs in session {scope}", claimed)
            return None
        problem = self.check_session(session, uid)
        if problem:
            self._reject(sock, peer, problem, claimed)
            return None
        conn = HelperConn(sock, peer, uid, session, str(hello.get("desktop", ""))[:32])
        sock.settimeout(None)
        conn.send({"type": "welcome", "report_s": self.report_s})
        for extra in lines[1:]:
            self._handle(conn, extra)
        return conn

    def _serve(self, sock: socket.socket) -> None:
        reader = LineReader(sock)
        conn = self._handshake(sock, reader)
        if conn is None:
            return
        with self._lock:
            old = self.helpers.get(conn.session)
            self.helpers[conn.session] = conn
        if old is not None:  # a second helper in the same session (autostart and user unit): newest wins
            try:
                old.send({"type": "replaced"})
            except OSError:
                pass
            _close(old.sock)
        log.info("helper connected: uid %s session %s (%s)", conn.uid, conn.session, conn.desktop or "?")
        try:
            while not self._stop.is_set():
                try:
                    lines = reader.read()
                except (OSError, ProtocolError):
                    break
                if lines is None:
                    break
                for line in lines:
                    self._handle(conn, line)
        finally:
            with self._lock:
                current = self.helpers.get(conn.session) is conn
                if current:
                    del self.helpers[conn.session]
            _close(sock)
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
