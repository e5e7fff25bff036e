"""baomi-session against dbusmock desktop objects on a private session bus, talking to the real server."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from baomi.agent.screenlock.server import HelperServer

from .conftest import start_private_bus, dbus, dbusmock, spawn_mock, wait_for

pytestmark = pytest.mark.timeout(60)

SS = "org.freedesktop.ScreenSaver"


class Desktop:
    """A desktop's D-Bus services as dbusmock objects on a real (private) session bus."""

    def __init__(self) -> None:
        self.pid, self.address = start_private_bus()
        self.bus = dbus.bus.BusConnection(self.address)
        self.procs: list[subprocess.Popen] = []

    def mock(self, name: str, path: str, iface: str):
        proc = spawn_mock(["--session", name, path, iface], {"DBUS_SESSION_BUS_ADDRESS": self.address})
        self.procs.append(proc)
        assert wait_for(lambda: self.bus.name_has_owner(name), 15), proc.stderr.read().decode()[-1500:]
        return self.bus.get_object(name, path)

    def template(self, name: str, bus_name: str, path: str):
        proc = spawn_mock(["--session", "--template", name], {"DBUS_SESSION_BUS_ADDRESS": self.address})
        self.procs.append(proc)
        assert wait_for(lambda: self.bus.name_has_owner(bus_name), 15)
        return self.bus.get_object(bus_name, path)

    def close(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
        self.bus.close()
        os.kill(self.pid, 15)


@pytest.fixture
def desktop():
    d = Desktop()
    yield d
    d.close()


@pytest.fixture
def server(tmp_path: Path):
    recorded: list[tuple[str, dict]] = []
    srv = HelperServer(tmp_path / "run" / "session.sock", lambda kind, **f: recorded.append((kind, f)),
                       report_s=0.3)
    srv.recorded = recorded
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def helper_proc(desktop: Desktop, server: HelperServer):
    procs = []

    def start(session: str = "c7") -> subprocess.Popen:
        env = {**os.environ, "DBUS_SESSION_BUS_ADDRESS": desktop.address}
        proc = subprocess.Popen([sys.executable, "-m", "baomi.agent.screenlock.helper", "--socket",
                                 str(server.path), "--session", session, "--no-settings"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        procs.append(proc)
        assert wait_for(lambda: server.state(session), 15), proc.stderr.read1().decode() if proc.poll() else "no state"
        return proc

    yield start
    for p in procs:
        p.terminate()
        p.wait(timeout=5)


def gnome_like(desktop: Desktop, idle_ms: int = 42000):
    mutter = desktop.mock("org.gnome.Mutter.IdleMonitor", "/org/gnome/Mutter/IdleMonitor/Core",
                          "org.gnome.Mutter.IdleMonitor")
    mutter.AddMethod("", "GetIdletime", "", "t", f"ret = dbus.UInt64({idle_ms})", dbus_interface=dbusmock.MOCK_IFACE)
    saver = desktop.mock(SS, "/org/freedesktop/ScreenSaver", SS)
    saver.AddProperty(SS, "TestLocked", dbus.Boolean(False), dbus_interface=dbusmock.MOCK_IFACE)
    saver.AddMethods(SS, [
        ("GetActive", "", "b", f"ret = self.Get('{SS}', 'TestLocked')"),
        ("GetSessionIdleTime", "", "u", "ret = dbus.UInt32(7)"),
        ("Lock", "", "", f"self.Set('{SS}', 'TestLocked', dbus.Boolean(True))"),
    ], dbus_interface=dbusmock.MOCK_IFACE)
    return mutter, saver


def test_helper_reports_idle_and_locks_when_told(desktop: Desktop, server: HelperServer, helper_proc) -> None:
    mutter, saver = gnome_like(desktop, idle_ms=42000)
    helper_proc("c7")
    st = server.state("c7")
    # Mutter's idle monitor (milliseconds) is preferred over the ScreenSaver's seconds
    assert st["idle_ms"] == 42000 and st["locked"] is False
    conn = server.helper_for("c7")
    assert conn.uid == os.getuid() and conn.desktop.startswith("gnome-idle")
    assert server.lock("c7") is True
    assert saver.GetMethodCalls("Lock", dbus_interface=dbusmock.MOCK_IFACE)
    assert wait_for(lambda: server.state("c7")["locked"] is True, 5)
    assert server.lock("nope") is None  # no helper for that session


def test_helper_shows_notifications(desktop: Desktop, server: HelperServer, helper_proc) -> None:
    gnome_like(desktop)
    notes = desktop.template("notification_daemon", "org.freedesktop.Notifications", "/org/freedesktop/Notifications")
    helper_proc("c8")
    assert server.notify(os.getuid(), "Copy blocked", "secret.docx is 机密 (confidential)", "critical") is True
    calls = notes.GetMethodCalls("Notify", dbus_interface=dbusmock.MOCK_IFACE)
    assert calls
    args = calls[-1][1]
    assert args[0] == "baomi" and args[3] == "Copy blocked" and "机密" in args[4]
    assert int(args[6]["urgency"]) == 2
    assert server.notify(os.getuid() + 12345, "x", "y") is False  # nobody of that uid connected


def test_helper_without_lock_interface_says_so(desktop: Desktop, server: HelperServer, helper_proc) -> None:
    mutter = desktop.mock("org.gnome.Mutter.IdleMonitor", "/org/gnome/Mutter/IdleMonitor/Core",
                          "org.gnome.Mutter.IdleMonitor")
    mutter.AddMethod("", "GetIdletime", "", "t", "ret = dbus.UInt64(1500)", dbus_interface=dbusmock.MOCK_IFACE)
    helper_proc("c9")
    assert server.state("c9")["idle_ms"] == 1500 and server.state("c9")["locked"] is None
    assert server.lock("c9") is False


def test_helper_death_is_noticed(desktop: Desktop, tmp_path: Path) -> None:
    gone = []
    srv = HelperServer(tmp_path / "s.sock", lambda *a, **k: None, report_s=0.3, on_disconnect=gone.append)
    srv.start()
    try:
        gnome_like(desktop)
        env = {**os.environ, "DBUS_SESSION_BUS_ADDRESS": desktop.address}
        proc = subprocess.Popen([sys.executable, "-m", "baomi.agent.screenlock.helper", "--socket",
                                 str(srv.path), "--session", "d1", "--no-settings"], env=env)
        assert wait_for(lambda: srv.helper_for("d1"), 15)
        proc.kill()
        proc.wait()
        assert wait_for(lambda: gone, 5)
        assert gone[0].session == "d1" and srv.helper_for("d1") is None
    finally:
        srv.stop()


def test_helper_on_ukui(desktop: Desktop, server: HelperServer, helper_proc) -> None:
    ukui = desktop.mock("org.ukui.ScreenSaver", "/", "org.ukui.ScreenSaver")
    ukui.AddProperty("org.ukui.ScreenSaver", "TestLocked", dbus.Boolean(False), dbus_interface=dbusmock.MOCK_IFACE)
    ukui.AddMethods("org.ukui.ScreenSaver", [
        ("GetLockState", "", "b", "ret = self.Get('org.ukui.ScreenSaver', 'TestLocked')"),
        ("Lock", "", "", "self.Set('org.ukui.ScreenSaver', 'TestLocked', dbus.Boolean(True))"),
    ], dbus_interface=dbusmock.MOCK_IFACE)
    helper_proc("u1")
    assert server.helper_for("u1").desktop == "ukui"
    assert server.state("u1")["locked"] is False and server.state("u1")["idle_ms"] is None
    assert server.lock("u1") is True
    assert wait_for(lambda: server.state("u1")["locked"] is True, 5)


def test_helper_on_dde(desktop: Desktop, server: HelperServer, helper_proc) -> None:
    front = desktop.mock("com.deepin.dde.lockFront", "/com/deepin/dde/lockFront", "com.deepin.dde.lockFront")
    sm = desktop.mock("com.deepin.SessionManager", "/com/deepin/SessionManager", "com.deepin.SessionManager")
    sm.AddProperty("com.deepin.SessionManager", "Locked", dbus.Boolean(False), dbus_interface=dbusmock.MOCK_IFACE)
    # the lock screen, once shown, tells the session manager (as DDE does)
    front.AddMethod("com.deepin.dde.lockFront", "Show", "", "",
                    "dbus.SessionBus().get_object('com.deepin.SessionManager', '/com/deepin/SessionManager')"
                    ".Set('com.deepin.SessionManager', 'Locked', dbus.Boolean(True), "
                    "dbus_interface='org.freedesktop.DBus.Properties')", dbus_interface=dbusmock.MOCK_IFACE)
    helper_proc("u2")
    assert server.helper_for("u2").desktop == "dde"
    assert server.state("u2")["locked"] is False
    assert server.lock("u2") is True
    assert front.GetMethodCalls("Show", dbus_interface=dbusmock.MOCK_IFACE)
    assert wait_for(lambda: server.state("u2")["locked"] is True, 5)


def test_gsettings_values_are_parsed() -> None:
    from baomi.agent.screenlock.helper import parse_gvariant
    assert parse_gvariant("uint32 300") == 300 and parse_gvariant("5") == 5 and parse_gvariant("-1") == -1
    assert parse_gvariant("true") is True and parse_gvariant("false") is False
    assert parse_gvariant("'24h'") == "'24h'"
