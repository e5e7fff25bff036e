"""The enforcement loop against python-dbusmock's logind on a private system bus."""
from __future__ import annotations

from pathlib import Path

import pytest

from baomi.agent.config import load
from baomi.agent.context import open_context
from baomi.agent.screenlock.enforcer import Enforcer

from .conftest import MockLogind, wait_for, write_config

pytestmark = pytest.mark.timeout(60)

LATENCIES: list[float] = []


@pytest.fixture
def run_enforcer(tmp_path: Path, logind: MockLogind):
    started = []

    def start(**screenlock):
        ctx = open_context(load(write_config(tmp_path, **screenlock)))
        enf = Enforcer(ctx)
        enf.start()
        started.append((enf, ctx))
        assert wait_for(enf.available.is_set, 10), enf.unavailable_reason
        return enf, ctx

    yield start
    for enf, ctx in started:
        enf.stop()
        ctx.spool.close()


def events(ctx, kind: str | None = None) -> list[dict]:
    return [e for e in ctx.spool.iter_events() if kind is None or e["kind"] == kind]


def test_idle_session_is_locked_and_recorded(logind: MockLogind, run_enforcer) -> None:
    logind.add_session("c1", 1000, "alice", idle_s=0.5)
    enf, ctx = run_enforcer()
    # crosses the 2 s limit about 1.5 s from now
    ev = wait_for(lambda: events(ctx, "screenlock.enforced"), 15)
    assert ev, f"no screenlock.enforced; events: {[e['kind'] for e in events(ctx)]}"
    e = ev[0]
    assert logind.get("c1", "LockedHint") is True
    assert e["session"]["id"] == "c1" and e["user"]["name"] == "alice" and e["user"]["uid"] == 1000
    assert e["session"]["seat"] == "seat0" and e["session"]["type"] == "x11"
    assert e["details"]["by"] == "agent" and e["details"]["attempts"] == 1
    assert e["session"]["idle_s"] >= 2.0
    # latency from crossing the limit to LockedHint true: within one poll interval plus verification polling
    lat = e["details"]["latency_s"]
    assert 0 <= lat <= 0.5 + 1.5, lat
    LATENCIES.append(lat)
    assert not events(ctx, "screenlock.failed")
    # locked once, recorded once
    assert wait_for(lambda: len(events(ctx, "screenlock.enforced")) > 1, 1.5) is False


def test_active_session_is_not_locked(logind: MockLogind, run_enforcer) -> None:
    logind.add_session("c2", 1000, "alice")           # IdleHint false: the user is working
    enf, ctx = run_enforcer()
    assert wait_for(lambda: events(ctx, "session.started"), 5)
    assert wait_for(lambda: logind.get("c2", "LockedHint"), 3) is False
    assert not events(ctx, "screenlock.enforced") and not events(ctx, "screenlock.failed")


def test_lock_that_never_takes_effect_is_reported(logind: MockLogind, run_enforcer) -> None:
    logind.set_lock_behaviour(works=False)             # LockSession accepted, nothing locks
    logind.add_session("c3", 1001, "bob", idle_s=5)
    enf, ctx = run_enforcer()
    failed = wait_for(lambda: events(ctx, "screenlock.failed"), 15)
    assert failed, [e["kind"] for e in events(ctx)]
    f = failed[0]
    assert f["severity"] == "high"
    assert f["session"]["id"] == "c3" and f["user"]["name"] == "bob"
    assert f["details"]["follow_up"] == "retry" and f["details"]["attempt"] == 1
    assert f["details"]["waited_s"] >= 1.5
    # default follow-up: try again and keep reporting
    assert wait_for(lambda: len(events(ctx, "screenlock.failed")) >= 2, 15)
    assert not events(ctx, "session.terminated")
    # once the desktop does lock, the agent records it
    logind.set_lock_behaviour(works=True)
    ok = wait_for(lambda: events(ctx, "screenlock.enforced"), 15)
    assert ok and ok[0]["details"]["attempts"] >= 3


def test_failed_lock_can_terminate_the_session(logind: MockLogind, run_enforcer) -> None:
    logind.set_lock_behaviour(works=False)
    logind.obj.AddMethod("org.freedesktop.login1.Manager", "TerminateSession", "s", "",
                         "self.RemoveObject('/org/freedesktop/login1/session/' + args[0])",
                         dbus_interface="org.freedesktop.DBus.Mock")
    logind.add_session("c4", 1001, "bob", idle_s=5)
    enf, ctx = run_enforcer(on_failure="terminate")
    term = wait_for(lambda: events(ctx, "session.terminated"), 15)
    assert term and term[0]["session"]["id"] == "c4" and term[0]["rule"] == "screenlock.failed"
    assert term[0]["details"]["error"] is None
    assert events(ctx, "screenlock.failed")
    assert wait_for(lambda: events(ctx, "session.ended"), 5)


def test_several_sessions_at_once(logind: MockLogind, run_enforcer) -> None:
    users = [("m1", 1000, "alice", 0.5), ("m2", 1001, "bob", 1.0), ("m3", 1002, "carol", 0.0)]
    for sid, uid, name, idle in users:
        logind.add_session(sid, uid, name, seat="seat0" if sid == "m1" else "", idle_s=idle or None)
    enf, ctx = run_enforcer()
    got = wait_for(lambda: len(events(ctx, "screenlock.enforced")) >= 2 and events(ctx, "screenlock.enforced"), 15)
    assert got
    assert sorted(e["session"]["id"] for e in got) == ["m1", "m2"]
    assert {e["user"]["name"] for e in got} == {"alice", "bob"}
    LATENCIES.extend(e["details"]["latency_s"] for e in got)
    assert logind.get("m3", "LockedHint") is False
    assert sorted(e["session"]["id"] for e in events(ctx, "session.started")) == ["m1", "m2", "m3"]


def test_sessions_appearing_and_vanishing(logind: MockLogind, run_enforcer) -> None:
    enf, ctx = run_enforcer(poll_s=30.0)   # long poll: only the logind signals can make this quick
    logind.add_session("v1", 1000, "alice")
    st = wait_for(lambda: events(ctx, "session.started"), 10)
    assert st and st[0]["session"]["id"] == "v1" and st[0]["user"]["name"] == "alice"
    assert st[0]["details"]["existing"] is False
    logind.remove_session("v1")
    en = wait_for(lambda: events(ctx, "session.ended"), 10)
    assert en and en[0]["session"]["id"] == "v1" and en[0]["user"]["uid"] == 1000


def test_server_sessions_are_left_alone(logind: MockLogind, run_enforcer) -> None:
    logind.add_session("t1", 1000, "alice", seat="", type_="tty", idle_s=60)
    logind.add_session("t2", 0, "root", seat="", type_="unspecified", idle_s=60)
    enf, ctx = run_enforcer(helper_grace_s=0.5)
    assert wait_for(lambda: len(events(ctx, "session.started")) == 2, 5)
    assert wait_for(lambda: [e for e in events(ctx) if e["kind"].startswith(("screenlock.", "helper."))], 3) == []
    assert logind.get("t1", "LockedHint") is False


def test_graphical_session_without_helper_is_reported(logind: MockLogind, run_enforcer) -> None:
    logind.add_session("h1", 1000, "alice")
    enf, ctx = run_enforcer(helper_grace_s=1.0)
    miss = wait_for(lambda: events(ctx, "helper.missing"), 10)
    assert miss and miss[0]["session"]["id"] == "h1" and miss[0]["details"]["reason"] == "not connected"
    assert wait_for(lambda: len(events(ctx, "helper.missing")) > 1, 1.5) is False  # once, not every poll


def test_absence_rule_warns_then_logs_out(logind: MockLogind, run_enforcer) -> None:
    logind.add_session("a1", 1000, "alice", idle_s=3 * 60 + 30)
    logind.obj.AddMethod("org.freedesktop.login1.Manager", "TerminateSession", "s", "",
                         "self.RemoveObject('/org/freedesktop/login1/session/' + args[0])",
                         dbus_interface="org.freedesktop.DBus.Mock")
    enf, ctx = run_enforcer(absence_min=3, idle_limit_s=60, absence_action="logout")
    assert wait_for(lambda: events(ctx, "screenlock.absence"), 10)
    warn = events(ctx, "screenlock.absence_warning")
    assert warn and warn[0]["session"]["id"] == "a1"
    assert events(ctx, "screenlock.absence")[0]["details"]["action"] == "logout"
    assert wait_for(lambda: events(ctx, "session.ended"), 5)


def test_report_latencies(capsys) -> None:
    """Print the lock latencies measured above (crossing the limit → LockedHint true)."""
    if not LATENCIES:
        pytest.skip("no latency measured (the locking tests did not run)")
    with capsys.disabled():
        print(f"\nscreen-lock latency over {len(LATENCIES)} locks: "
              f"min {min(LATENCIES):.3f}s max {max(LATENCIES):.3f}s values {LATENCIES}")


def test_component_with_a_helper_reporting_drifted_settings(tmp_path: Path, logind: MockLogind) -> None:
    """ScreenlockComponent as the daemon builds it: socket + enforcer; an honest helper reports bad settings."""
    import json
    import os
    import socket

    from baomi.agent.screenlock.component import ScreenlockComponent
    from baomi.agent.screenlock.protocol import encode

    logind.add_session("d1", os.getuid(), "root")
    ctx = open_context(load(write_config(tmp_path)))
    comp = ScreenlockComponent(ctx)
    comp.start()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        assert comp.server.notify in ctx.notifiers
        assert wait_for(lambda: comp.enforcer.sessions.get("d1"), 10)
        s.settimeout(5)
        s.connect(str(tmp_path / "session.sock"))
        s.sendall(encode({"type": "hello", "uid": os.getuid(), "session": "d1", "desktop": "gnome"}))
        assert json.loads(s.recv(4096).splitlines()[0])["type"] == "welcome"
        s.sendall(encode({"type": "state", "idle_ms": 100, "locked": False, "settings": {
            "org.gnome.desktop.session.idle-delay": 0, "org.gnome.desktop.screensaver.lock-enabled": True}}))
        drift = wait_for(lambda: events(ctx, "screenlock.settings_drift"), 5)
        assert drift and drift[0]["session"]["id"] == "d1" and drift[0]["details"]["source"] == "session"
        assert list(drift[0]["details"]["keys"]) == ["org.gnome.desktop.session.idle-delay"]
        # the same report again is not a new event
        s.sendall(encode({"type": "state", "idle_ms": 200, "locked": False, "settings": {
            "org.gnome.desktop.session.idle-delay": 0}}))
        assert wait_for(lambda: len(events(ctx, "screenlock.settings_drift")) > 1, 1.0) is False
    finally:
        s.close()
        comp.stop()
        ctx.spool.close()
    assert not (tmp_path / "session.sock").exists()


def test_logind_going_away_and_coming_back(logind: MockLogind, run_enforcer) -> None:
    from .conftest import LOGIND, spawn_mock

    enf, ctx = run_enforcer(logind_retry_s=0.5)
    logind.proc.terminate()
    logind.proc.wait(timeout=5)
    gone = wait_for(lambda: events(ctx, "screenlock.unavailable"), 10)
    assert gone and "not running" in gone[0]["details"]["error"]
    back = spawn_mock(["--template", "logind"], {"DBUS_SYSTEM_BUS_ADDRESS": logind.address})
    try:
        assert wait_for(lambda: events(ctx, "screenlock.available"), 15)
        assert enf.available.is_set()
        assert len(events(ctx, "screenlock.unavailable")) == 1
    finally:
        back.terminate()
        back.wait(timeout=5)
        wait_for(lambda: not logind.bus.name_has_owner(LOGIND), 5)


def test_helper_cannot_override_logind_locked_hint(tmp_path: Path, logind: MockLogind) -> None:
    """A process of the session's own user says "locked" on the helper socket; logind says unlocked."""
    import os
    import socket
    import threading

    from baomi.agent.screenlock.component import ScreenlockComponent
    from baomi.agent.screenlock.protocol import encode

    logind.set_lock_behaviour(works=False)             # nothing locks the session
    logind.add_session("f1", os.getuid(), "root", idle_s=5)
    ctx = open_context(load(write_config(tmp_path)))
    comp = ScreenlockComponent(ctx)
    comp.start()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lying = threading.Event()
    try:
        assert wait_for(lambda: comp.enforcer.sessions.get("f1"), 10)
        s.settimeout(5)
        s.connect(str(tmp_path / "session.sock"))
        s.sendall(encode({"type": "hello", "uid": os.getuid(), "session": "f1", "desktop": "forged"}))
        assert b"welcome" in s.recv(4096)

        def lie() -> None:                              # a helper's reports, every half second: "locked"
            while not lying.is_set():
                try:
                    s.sendall(encode({"type": "state", "idle_ms": 9000, "locked": True}))
                except OSError:
                    return
                lying.wait(0.3)

        threading.Thread(target=lie, daemon=True).start()
        failed = wait_for(lambda: len(events(ctx, "screenlock.failed")) >= 2 and events(ctx, "screenlock.failed"), 20)
        assert failed, [e["kind"] for e in events(ctx)]
        assert not events(ctx, "screenlock.enforced")
        assert logind.get("f1", "LockedHint") is False
        assert failed[0]["details"]["locked_hint"] is False and failed[-1]["details"]["helper_locked"] is True
        disputed = wait_for(lambda: events(ctx, "screenlock.disputed"), 5)
        assert disputed, [e["kind"] for e in events(ctx)]
        d = disputed[0]
        assert d["severity"] == "high" and d["session"]["id"] == "f1" and d["user"]["uid"] == os.getuid()
        assert d["details"]["logind_locked"] is False and d["details"]["helper_locked"] is True
        assert d["details"]["proof"] == "logind" and d["details"]["desktop"] == "forged"
        # at most once per lock attempt, however many reports repeat the claim
        attempts = [e["details"]["attempt"] for e in events(ctx, "screenlock.disputed")]
        assert len(attempts) == len(set(attempts))
        sent = len(logind.obj.GetMethodCalls("LockSession", dbus_interface="org.freedesktop.DBus.Mock"))
        assert len(attempts) <= sent + 1
    finally:
        lying.set()
        s.close()
        comp.stop()
        ctx.spool.close()


def test_absence_rule_audit_records_without_warning_or_acting(logind: MockLogind, run_enforcer) -> None:
    logind.add_session("a2", 1000, "alice", idle_s=3 * 60 + 30)
    enf, ctx = run_enforcer(absence_min=3, idle_limit_s=60, absence_action="audit")
    got = wait_for(lambda: events(ctx, "screenlock.absence"), 10)
    assert got and (got[0]["action"], got[0]["details"]["action"], got[0]["session"]["id"]) == ("audit", "audit", "a2")
    assert events(ctx, "screenlock.absence_warning") == [] and events(ctx, "session.terminated") == []
    assert logind.obj.GetMethodCalls("TerminateSession", dbus_interface="org.freedesktop.DBus.Mock") == []


def test_absence_rule_suspends_through_logind(logind: MockLogind, run_enforcer) -> None:
    logind.add_session("a3", 1000, "alice", idle_s=3 * 60 + 30)
    logind.obj.AddMethod("org.freedesktop.login1.Manager", "Suspend", "b", "", "",
                         dbus_interface="org.freedesktop.DBus.Mock")
    enf, ctx = run_enforcer(absence_min=3, idle_limit_s=60, absence_action="suspend")
    assert wait_for(lambda: logind.obj.GetMethodCalls("Suspend", dbus_interface="org.freedesktop.DBus.Mock"), 10)
    (calls,) = [logind.obj.GetMethodCalls("Suspend", dbus_interface="org.freedesktop.DBus.Mock")]
    assert [bool(c[1][0]) for c in calls] == [False]  # not interactive: no polkit prompt
    absence = events(ctx, "screenlock.absence")
    assert absence and absence[0]["action"] == "suspend"
    assert events(ctx, "screenlock.absence_warning")[0]["details"]["action"] == "suspend"
    assert events(ctx, "screenlock.failed") == []
