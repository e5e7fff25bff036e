"""systemd-logind client on the system bus (jeepney).

The bus is $DBUS_SYSTEM_BUS_ADDRESS when set (tests point it at a private bus),
else the default system bus. Method calls go through one connection owned by
the caller's thread; signals (SessionNew/SessionRemoved) are watched on a second
connection by SignalWatcher, which only wakes the enforcer: the enforcer's
periodic resync is what makes a missed signal harmless.
"""
from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from typing import Callable

from jeepney import MatchRule
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import DBusConnection, open_dbus_connection

from .dbusutil import call, get_all

log = logging.getLogger("baomi.agent.screenlock")

BUS_NAME = "org.freedesktop.login1"
MANAGER_PATH = "/org/freedesktop/login1"
MANAGER = "org.freedesktop.login1.Manager"
SESSION = "org.freedesktop.login1.Session"
DEFAULT_SYSTEM_BUS = "unix:path=/run/dbus/system_bus_socket"


def system_bus_address() -> str:
    return os.environ.get("DBUS_SYSTEM_BUS_ADDRESS") or DEFAULT_SYSTEM_BUS


@dataclass(frozen=True)
class LogindSession:
    id: str
    path: str
    uid: int
    name: str
    seat: str
    type: str
    class_: str
    active: bool
    remote: bool
    state: str
    idle_hint: bool
    idle_since_us: int
    idle_since_mono_us: int
    locked_hint: bool
    leader: int = 0


class LogindUnavailable(RuntimeError):
    """The system bus or logind on it cannot be reached."""


class Logind:
    """Blocking logind client; use from one thread."""

    def __init__(self, address: str | None = None, timeout: float = 5.0) -> None:
        self.address = address or system_bus_address()
        self.timeout = timeout
        self._conn: DBusConnection | None = None

    def connect(self) -> "Logind":
        try:
            self._conn = open_dbus_connection(self.address, auth_timeout=self.timeout)
        except Exception as exc:
            raise LogindUnavailable(f"system bus {self.address} not reachable: {type(exc).__name__}: {exc}") from exc
        try:
            (owned,) = call(self._conn, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                            "org.freedesktop.DBus", "NameHasOwner", "s", (BUS_NAME,), self.timeout)
        except Exception as exc:
            self.close()
            raise LogindUnavailable(f"system bus {self.address} did not answer: {exc}") from exc
        if not owned:
            self.close()
            raise LogindUnavailable(f"{BUS_NAME} is not running on the system bus {self.address}")
        return self

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    @property
    def conn(self) -> DBusConnection:
        if self._conn is None:
            raise LogindUnavailable("not connected")
        return self._conn

    def _manager(self, method: str, signature: str | None = None, args: tuple = ()) -> tuple:
        return call(self.conn, BUS_NAME, MANAGER_PATH, MANAGER, method, signature, args, self.timeout)

    def list_sessions(self) -> list[LogindSession]:
        """Every session with its properties; a session that vanishes meanwhile is left out."""
        (rows,) = self._manager("ListSessions")
        sessions = []
        for sid, _uid, _name, _seat, path in rows:
            try:
                sessions.append(self.session(sid, path))
            except Exception as exc:  # removed between ListSessions and GetAll
                log.debug("session %s vanished while reading it: %s", sid, exc)
        return sessions

    def session(self, session_id: str, path: str | None = None) -> LogindSession:
        path = path or f"{MANAGER_PATH}/session/{_escape(session_id)}"
        p = get_all(self.conn, BUS_NAME, path, SESSION, self.timeout)
        user = p.get("User") or (0, "")
        seat = p.get("Seat") or ("", "")
        return LogindSession(
            id=str(p.get("Id", session_id)), path=path, uid=int(user[0]), name=str(p.get("Name", "")),
            seat=str(seat[0]), type=str(p.get("Type", "")), class_=str(p.get("Class", "")),
            active=bool(p.get("Active", False)), remote=bool(p.get("Remote", False)),
            state=str(p.get("State", "")), idle_hint=bool(p.get("IdleHint", False)),
            idle_since_us=int(p.get("IdleSinceHint", 0)),
            idle_since_mono_us=int(p.get("IdleSinceHintMonotonic", 0)),
            locked_hint=bool(p.get("LockedHint", False)), leader=int(p.get("Leader", 0)))

    def lock_session(self, session_id: str) -> None:
        self._manager("LockSession", "s", (session_id,))

    def terminate_session(self, session_id: str) -> None:
        self._manager("TerminateSession", "s", (session_id,))

    def power_off(self) -> None:
        self._manager("PowerOff", "b", (False,))

    def suspend(self) -> None:
        self._manager("Suspend", "b", (False,))


def _escape(session_id: str) -> str:
    """logind object paths escape every byte outside [A-Za-z0-9] as _xx."""
    out = []
    for i, ch in enumerate(session_id):
        if ch.isascii() and (ch.isalpha() or (ch.isdigit() and i > 0)):
            out.append(ch)
        else:
            out.append("_%02x" % ord(ch))
    return "".join(out)


class SignalWatcher:
    """Calls on_change(kind, session_id) for SessionNew/SessionRemoved until stopped."""

    def __init__(self, address: str, on_change: Callable[[str, str], None]) -> None:
        self.address = address
        self.on_change = on_change
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.subscribed = threading.Event()

    def start(self, wait_s: float = 2.0) -> None:
        self._thread = threading.Thread(target=self._run, name="screenlock-signals", daemon=True)
        self._thread.start()
        self.subscribed.wait(wait_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=3)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._watch()
            except Exception as exc:  # bus gone: the enforcer's resync covers the gap
                log.debug("logind signal watch interrupted: %s", exc)
                self._stop.wait(2.0)

    def _watch(self) -> None:
        # no sender in the rule: signals carry logind's unique name, which the local filter cannot resolve
        rule = MatchRule(type="signal", interface=MANAGER, path=MANAGER_PATH)
        with open_dbus_connection(self.address) as conn:
            conn.send_and_get_reply(message_bus.AddMatch(rule), timeout=5)
            self.subscribed.set()
            with conn.filter(rule, bufsize=64) as queue:
                while not self._stop.is_set():
                    try:
                        msg = conn.recv_until_filtered(queue, timeout=0.5)
                    except TimeoutError:
                        continue
                    member = msg.header.fields.get(3)  # HeaderFields.member
                    if member in ("SessionNew", "SessionRemoved") and msg.body:
                        self.on_change(member, str(msg.body[0]))
