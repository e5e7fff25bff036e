"""`baomi-session`: the per-session helper, running as the desktop user.

Root cannot talk to a user's session bus, so this small process does: it reads
idle time and lock state from the desktop's own D-Bus interfaces, locks the
desktop when the daemon asks, shows the agent's desktop notifications, and
reports to the daemon over its UNIX socket (protocol.py). Started by XDG
autostart or the systemd user unit in packaging/desktop/.
"""
from __future__ import annotations

import argparse
import logging
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from jeepney.io.blocking import DBusConnection, open_dbus_connection

from .dbusutil import call, get_all, name_has_owner
from .desktop_settings import CHECKED_KEYS
from .protocol import VERSION, LineReader, ProtocolError, decode, encode

log = logging.getLogger("baomi.session")

DEFAULT_SOCKET = "/run/baomi/session.sock"
SETTINGS_EVERY_S = 60.0
REPLACED = "replaced by a newer helper of this session"


class Backend:
    """One desktop interface. Subclasses answer None when they cannot tell."""
    name = ""
    bus_name = ""

    def __init__(self, conn: DBusConnection) -> None:
        self.conn = conn

    def present(self) -> bool:
        try:
            return name_has_owner(self.conn, self.bus_name)
        except Exception:
            return False

    def idle_ms(self) -> int | None:
        return None

    def locked(self) -> bool | None:
        return None

    def lock(self) -> bool:
        return False


class MutterIdle(Backend):
    name, bus_name = "gnome-idle", "org.gnome.Mutter.IdleMonitor"

    def idle_ms(self) -> int | None:
        (ms,) = call(self.conn, self.bus_name, "/org/gnome/Mutter/IdleMonitor/Core",
                     "org.gnome.Mutter.IdleMonitor", "GetIdletime")
        return int(ms)


class _ScreenSaverLike(Backend):
    path = ""
    iface = ""

    def locked(self) -> bool | None:
        (active,) = call(self.conn, self.bus_name, self.path, self.iface, "GetActive")
        return bool(active)

    def lock(self) -> bool:
        call(self.conn, self.bus_name, self.path, self.iface, "Lock")
        return True


class GnomeScreenSaver(_ScreenSaverLike):
    name, bus_name = "gnome", "org.gnome.ScreenSaver"
    path, iface = "/org/gnome/ScreenSaver", "org.gnome.ScreenSaver"


class FreedesktopScreenSaver(_ScreenSaverLike):
    """KDE, Xfce, Cinnamon, MATE and others."""
    name, bus_name = "freedesktop", "org.freedesktop.ScreenSaver"
    path, iface = "/org/freedesktop/ScreenSaver", "org.freedesktop.ScreenSaver"

    def idle_ms(self) -> int | None:
        # the interface gives seconds
        (s,) = call(self.conn, self.bus_name, self.path, self.iface, "GetSessionIdleTime")
        return int(s) * 1000


class UkuiScreenSaver(Backend):
    name, bus_name = "ukui", "org.ukui.ScreenSaver"

    def locked(self) -> bool | None:
        (state,) = call(self.conn, self.bus_name, "/", "org.ukui.ScreenSaver", "GetLockState")
        return bool(state)

    def lock(self) -> bool:
        call(self.conn, self.bus_name, "/", "org.ukui.ScreenSaver", "Lock")
        return True


class DdeLockFront(Backend):
    name, bus_name = "dde", "com.deepin.dde.lockFront"

    def locked(self) -> bool | None:
        props = get_all(self.conn, "com.deepin.SessionManager", "/com/deepin/SessionManager",
                        "com.deepin.SessionManager")
        return bool(props["Locked"]) if "Locked" in props else None

    def lock(self) -> bool:
        call(self.conn, self.bus_name, "/com/deepin/dde/lockFront", "com.deepin.dde.lockFront", "Show")
        return True


BACKENDS: tuple[type[Backend], ...] = (MutterIdle, GnomeScreenSaver, UkuiScreenSaver, DdeLockFront,
                                       FreedesktopScreenSaver)
URGENCY = {"low": 0, "normal": 1, "critical": 2}


class Desktop:
    """The desktop interfaces present on this session bus, asked in order."""

    def __init__(self, conn: DBusConnection) -> None:
        self.conn = conn
        self.backends = [b(conn) for b in BACKENDS]
        self.present: list[Backend] = []
        self.refresh()

    def refresh(self) -> None:
        self.present = [b for b in self.backends if b.present()]

    @property
    def name(self) -> str:
        return ",".join(b.name for b in self.present) or "unknown"

    def _first(self, what: str) -> Any:
        for b in self.present:
            try:
                got = getattr(b, what)()
            except Exception as exc:
                log.debug("%s.%s failed: %s", b.name, what, exc)
                continue
            if got is not None:
                return got
        return None

    def idle_ms(self) -> int | None:
        return self._first("idle_ms")

    def locked(self) -> bool | None:
        seen = None
        for b in self.present:
            try:
                got = b.locked()
            except Exception:
                continue
            if got:
                return True
            seen = got if got is not None else seen
        return seen

    def lock(self) -> tuple[bool, str | None]:
        errors = []
        for b in self.present:
            if type(b).lock is Backend.lock:
                continue
            try:
                if b.lock():
                    return True, None
            except Exception as exc:
                errors.append(f"{b.name}: {exc}")
        return False, "; ".join(errors) or "no desktop lock interface on the session bus"

    def notify(self, summary: str, body: str, urgency: str = "normal") -> tuple[bool, str | None]:
        try:
            call(self.conn, "org.freedesktop.Notifications", "/org/freedesktop/Notifications",
                 "org.freedesktop.Notifications", "Notify", "susssasa{sv}i",
                 ("baomi", 0, "dialog-warning", summary, body, [],
                  {"urgency": ("y", URGENCY.get(urgency, 1))}, -1))
            return True, None
        except Exception as exc:
            return False, f"{type(exc).__name__}: {exc}"


def read_settings() -> dict[str, Any]:
    """Effective screen-lock settings of this session (GNOME keys via gsettings), when readable."""
    gs = shutil.which("gsettings")
    out: dict[str, Any] = {}
    if gs is None:
        return out
    for schema, key in CHECKED_KEYS:
        try:
            res = subprocess.run([gs, "get", schema, key], capture_output=True, text=True, timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if res.returncode == 0:
            out[f"{schema}.{key}"] = parse_gvariant(res.stdout.strip())
    return out


def parse_gvariant(text: str) -> Any:
    if text in ("true", "false"):
        return text == "true"
    m = re.fullmatch(r"(?:u?int\d+\s+)?(-?\d+)", text)
    if m:
        return int(m.group(1))
    return text


def session_id() -> str | None:
    sid = os.environ.get("XDG_SESSION_ID")
    if sid:
        return sid
    try:
        m = re.search(r"/session-([^/\s]+)\.scope", Path("/proc/self/cgroup").read_text())
    except OSError:
        return None
    return m.group(1) if m else None


class Helper:
    def __init__(self, socket_path: str, session: str, desktop: Desktop, with_settings: bool = True) -> None:
        self.socket_path = socket_path
        self.session = session
        self.desktop = desktop
        self.with_settings = with_settings
        self.report_s = 2.0
        self._settings: dict[str, Any] = {}
        self._settings_at = 0.0

    def state(self) -> dict[str, Any]:
        msg: dict[str, Any] = {"type": "state", "idle_ms": self.desktop.idle_ms(), "locked": self.desktop.locked()}
        if self.with_settings and time.monotonic() - self._settings_at > SETTINGS_EVERY_S:
            self._settings = read_settings()
            self._settings_at = time.monotonic()
            msg["settings"] = self._settings
        return msg

    def serve_once(self) -> str:
        """One connection's life; returns why it ended."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(self.socket_path)
            sock.sendall(encode({"type": "hello", "version": VERSION, "uid": os.getuid(), "session": self.session,
                                 "desktop": self.desktop.name, "pid": os.getpid()}))
            reader = LineReader(sock)
            self._settings_at = 0.0
            welcomed = False
            next_report = 0.0
            while True:
                if welcomed and time.monotonic() >= next_report:
                    sock.sendall(encode(self.state()))
                    next_report = time.monotonic() + self.report_s
                ready, _, _ = select.select([sock], [], [], max(0.0, next_report - time.monotonic()) if welcomed else 10)
                if not ready:
                    if not welcomed:
                        return "no answer from the daemon"
                    continue
                lines = reader.read()
                if lines is None:
                    return "daemon closed the connection"
                for line in lines:
                    msg = decode(line)
                    if msg["type"] == "rejected":
                        return f"rejected by the daemon: {msg.get('reason')}"
                    if msg["type"] == "replaced":
                        return REPLACED
                    if msg["type"] == "welcome":
                        welcomed = True
                        self.report_s = float(msg.get("report_s") or 2.0)
                        next_report = 0.0
                    elif msg["type"] == "lock":
                        ok, err = self.desktop.lock()
                        sock.sendall(encode({"type": "result", "id": msg.get("id"), "ok": ok, "error": err}))
                        next_report = 0.0  # report the new lock state right away
                    elif msg["type"] == "notify":
                        ok, err = self.desktop.notify(str(msg.get("summary", "")), str(msg.get("body", "")),
                                                      str(msg.get("urgency", "normal")))
                        sock.sendall(encode({"type": "result", "id": msg.get("id"), "ok": ok, "error": err}))
        except (OSError, ProtocolError) as exc:
            return f"{type(exc).__name__}: {exc}"
        finally:
            sock.close()

    def run(self) -> None:
        backoff = 1.0
        while True:
            started = time.monotonic()
            why = self.serve_once()
            if why == REPLACED:
                log.info("baomi-session: another helper took over this session; exiting")
                return
            log.warning("baomi-session: %s; reconnecting in %.0fs", why, backoff)
            if time.monotonic() - started > 60:
                backoff = 1.0
            time.sleep(backoff)
            backoff = min(backoff * 2, 30.0)
            self.desktop.refresh()


def request_main(argv: list[str]) -> int:
    """`baomi-session request FILE --reason ...`: ask for approval of a blocked copy."""
    from ..commands.approvals import add_arguments, cmd_request
    p = argparse.ArgumentParser(prog="baomi-session request",
                                description="ask the security administrator to approve a blocked copy (审批)")
    add_arguments(p)
    return cmd_request(p.parse_args(argv))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["request"]:
        return request_main(argv[1:])
    p = argparse.ArgumentParser(prog="baomi-session",
                                epilog="baomi-session request FILE --reason WHY: ask for approval of a blocked copy",
                                description="baomi per-session helper: desktop idle/lock state and notifications")
    p.add_argument("--socket", default=os.environ.get("BAOMI_SESSION_SOCKET", DEFAULT_SOCKET),
                   help=f"the agent's helper socket (default {DEFAULT_SOCKET})")
    p.add_argument("--session", default=None, help="logind session id (default: $XDG_SESSION_ID or from the cgroup)")
    p.add_argument("--no-settings", action="store_true", help="do not read and report desktop settings")
    p.add_argument("--probe", action="store_true", help="print what the desktop reports, then exit")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    try:
        conn = open_dbus_connection("SESSION")
    except Exception as exc:
        print(f"baomi-session: no session bus ($DBUS_SESSION_BUS_ADDRESS): {exc}", file=sys.stderr)
        return 1
    desktop = Desktop(conn)
    if args.probe:
        print({"desktop": desktop.name, "idle_ms": desktop.idle_ms(), "locked": desktop.locked(),
               "session": args.session or session_id(), "settings": read_settings()})
        return 0
    sid = args.session or session_id()
    if not sid:
        print("baomi-session: cannot tell the logind session (no $XDG_SESSION_ID); pass --session", file=sys.stderr)
        return 1
    try:
        Helper(args.socket, sid, desktop, with_settings=not args.no_settings).run()
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
