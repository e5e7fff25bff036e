"""`baomi-agent run` as a real process: with the mock logind and a helper, and with no logind at all."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import MockLogind, start_private_bus, spawn_mock, wait_for, write_config

pytestmark = pytest.mark.timeout(90)

AGENT = [sys.executable, "-m", "baomi.agent.cli"]


def agent_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "baomi-agent"
    return [str(exe)] if exe.exists() else AGENT


def spool_events(config: Path) -> list[dict]:
    res = subprocess.run([*agent_cmd(), "events", "--config", str(config), "--json"],
                         capture_output=True, text=True, timeout=30)
    return [json.loads(line) for line in res.stdout.splitlines() if line.strip()]


def kinds_of(config: Path, kind: str) -> list[dict]:
    return [e for e in spool_events(config) if e["kind"] == kind]


@pytest.fixture
def agent(tmp_path: Path):
    procs = []
    logs = []

    def start(config: Path, env: dict) -> subprocess.Popen:
        logs.append(open(tmp_path / "agent.log", "wb"))
        p = subprocess.Popen([*agent_cmd(), "run", "--config", str(config)], env={**os.environ, **env},
                             stdout=logs[-1], stderr=subprocess.STDOUT)
        procs.append(p)
        return p

    yield start
    for f in logs:
        f.close()
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def test_agent_keeps_running_without_logind(tmp_path: Path, agent) -> None:
    config = write_config(tmp_path, manage_desktop_settings=True)
    proc = agent(config, {"DBUS_SYSTEM_BUS_ADDRESS": f"unix:path={tmp_path}/no-such-bus"})
    unavailable = wait_for(lambda: kinds_of(config, "screenlock.unavailable"), 20, 0.3)
    assert unavailable, (tmp_path / "agent.log").read_text()[-3000:]
    assert "no-such-bus" in unavailable[0]["details"]["error"]
    assert unavailable[0]["severity"] == "high"
    # still up, and not recording the same problem on every retry (logind_retry_s = 1)
    assert wait_for(lambda: proc.poll() is not None, 3, 0.2) is False
    assert len(kinds_of(config, "screenlock.unavailable")) == 1
    log = (tmp_path / "agent.log").read_text()
    assert "screen lock cannot be enforced" in log and "no-such-bus" in log
    # the helper socket still serves notifications while logind is away
    assert (tmp_path / "session.sock").exists()
    # and the desktop settings were installed under the configured root
    if shutil.which("dconf"):
        assert wait_for(lambda: (tmp_path / "etc/dconf/db/local").exists(), 10, 0.2)
        assert (tmp_path / "etc/xdg/kscreenlockerrc").exists()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
    assert kinds_of(config, "agent.stopped")


def test_agent_with_helper_locks_an_idle_desktop(tmp_path: Path, logind: MockLogind, agent) -> None:
    """The whole chain: logind session idle per the helper's desktop report → locked → recorded."""
    import dbus
    import dbusmock

    # the user's desktop: a GNOME-like session bus whose idle monitor says 1 s idle, growing
    bus_pid, session_bus = start_private_bus()
    mocks = []
    helper = None
    try:
        env = {"DBUS_SESSION_BUS_ADDRESS": session_bus}
        mocks.append(spawn_mock(["--session", "org.gnome.Mutter.IdleMonitor", "/org/gnome/Mutter/IdleMonitor/Core",
                                 "org.gnome.Mutter.IdleMonitor"], env))
        mocks.append(spawn_mock(["--session", "org.gnome.ScreenSaver", "/org/gnome/ScreenSaver",
                                 "org.gnome.ScreenSaver"], env))
        sbus = dbus.bus.BusConnection(session_bus)
        assert wait_for(lambda: sbus.name_has_owner("org.gnome.Mutter.IdleMonitor")
                        and sbus.name_has_owner("org.gnome.ScreenSaver"), 15)
        mutter = sbus.get_object("org.gnome.Mutter.IdleMonitor", "/org/gnome/Mutter/IdleMonitor/Core")
        mutter.AddMethod("", "GetIdletime", "", "t",
                         "import time\nret = dbus.UInt64(int((time.time() - %f) * 1000))" % (time.time() - 1),
                         dbus_interface=dbusmock.MOCK_IFACE)
        saver = sbus.get_object("org.gnome.ScreenSaver", "/org/gnome/ScreenSaver")
        saver.AddProperty("org.gnome.ScreenSaver", "TestLocked", dbus.Boolean(False), dbus_interface=dbusmock.MOCK_IFACE)
        # locking, the shell tells logind (gnome-shell calls the session's SetLockedHint): LockedHint is the proof
        tell_logind = ("dbus.bus.BusConnection(%r).get_object('org.freedesktop.login1', "
                       "'/org/freedesktop/login1/session/g1').UpdateProperties('org.freedesktop.login1.Session', "
                       "{'LockedHint': dbus.Boolean(True)}, dbus_interface='org.freedesktop.DBus.Mock')"
                       % logind.address)
        saver.AddMethods("org.gnome.ScreenSaver", [
            ("GetActive", "", "b", "ret = self.Get('org.gnome.ScreenSaver', 'TestLocked')"),
            ("Lock", "", "", "self.Set('org.gnome.ScreenSaver', 'TestLocked', dbus.Boolean(True))\n" + tell_logind),
        ], dbus_interface=dbusmock.MOCK_IFACE)
        # logind: the session exists but its hints say nothing (IdleHint false), and LockSession does nothing:
        # only the helper's idle report and its desktop lock can get this session locked
        logind.set_lock_behaviour(works=False)
        logind.add_session("g1", os.getuid(), "root")

        config = write_config(tmp_path, idle_limit_s=3, verify_s=3.0)
        proc = agent(config, {"DBUS_SYSTEM_BUS_ADDRESS": logind.address})
        sock = tmp_path / "session.sock"
        assert wait_for(sock.exists, 20, 0.2), (tmp_path / "agent.log").read_text()[-3000:]
        helper = subprocess.Popen([sys.executable, "-m", "baomi.agent.screenlock.helper", "--socket", str(sock),
                                   "--session", "g1", "--no-settings"], env={**os.environ, **env},
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        enforced = wait_for(lambda: kinds_of(config, "screenlock.enforced"), 30, 0.3)
        assert enforced, ((tmp_path / "agent.log").read_text()[-3000:], [e["kind"] for e in spool_events(config)])
        e = enforced[0]
        assert e["session"]["id"] == "g1" and e["user"]["name"] == "root" and e["details"]["helper"] is True
        assert saver.GetMethodCalls("Lock", dbus_interface=dbusmock.MOCK_IFACE)
        assert logind.obj.GetMethodCalls("LockSession", dbus_interface=dbusmock.MOCK_IFACE)
        assert not kinds_of(config, "helper.rejected")
        assert "helper_locked" in e["details"] and not kinds_of(config, "screenlock.disputed")
        # the helper dying while its session lives on is reported
        helper.kill()
        helper.wait()
        missing = wait_for(lambda: kinds_of(config, "helper.missing"), 10, 0.3)
        assert missing and missing[0]["details"]["reason"] == "disconnected"
        assert proc.poll() is None
    finally:
        if helper and helper.poll() is None:
            helper.kill()
            helper.wait()
        for m in mocks:
            m.terminate()
            m.wait(timeout=5)
        os.kill(bus_pid, 15)
