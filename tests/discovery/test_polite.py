"""Discovery yields to the user's work: its thread and its scanner workers run at nice 19 and in
the idle I/O class, read back from the kernel; the daemon's pass waits while the battery is low
(a power_supply directory standing in for sysfs) or while a user types (the idle time the
screen-lock helpers report)."""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import psutil
import pytest

from baomi.agent.config import load
from baomi.agent.context import open_context
from baomi.agent.discovery.component import DiscoveryComponent
from baomi.agent.discovery.polite import IDLE_NICE, USER_IDLE, battery_low, make_idle, user_busy
from baomi.agent.scan.engine import Scanner

pytestmark = pytest.mark.timeout(120)


def test_the_calling_thread_alone_is_lowered() -> None:
    seen: dict[str, object] = {}

    def body() -> None:
        tid = threading.get_native_id()
        seen["problems"] = make_idle()
        seen["nice"] = os.getpriority(os.PRIO_PROCESS, tid)
        seen["ionice"] = psutil.Process(tid).ionice().ioclass

    main_nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    t = threading.Thread(target=body)
    t.start()
    t.join()
    assert seen["problems"] == [] and seen["nice"] == IDLE_NICE
    assert seen["ionice"] == psutil.IOPRIO_CLASS_IDLE
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == main_nice  # the rest of the agent


def test_scanner_workers_for_discovery_run_idle(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("正文\n", encoding="utf-8")
    (tmp_path / "agent.toml").write_text('[paths]\nstate_dir = "state"\n')
    cfg = load(tmp_path / "agent.toml")
    with Scanner(cfg, jobs=1, nice=IDLE_NICE, idle_io=True) as scanner:
        scanner.scan_file(tmp_path / "a.txt")
        (worker,) = scanner._all
        proc = psutil.Process(worker.proc.pid)
        assert proc.nice() == IDLE_NICE and proc.ionice().ioclass == psutil.IOPRIO_CLASS_IDLE


# -- pausing: the battery (the kernel's power_supply class, as a directory) and the typing user ----

def _supply(root: Path, name: str, **attrs: str) -> Path:
    d = root / name
    d.mkdir(parents=True, exist_ok=True)
    for k, v in attrs.items():
        (d / k).write_text(v + "\n")
    return d


def test_battery_low_reads_the_power_supply_class(tmp_path: Path) -> None:
    root = tmp_path / "power_supply"
    assert battery_low(20, root) is False                      # no such directory
    _supply(root, "AC", type="Mains", online="0")
    assert battery_low(20, root) is False                      # a desktop: no battery
    bat = _supply(root, "BAT0", type="Battery", status="Discharging", capacity="15")
    assert battery_low(20, root) is True
    assert battery_low(0, root) is False                       # 0: never pause
    (bat / "status").write_text("Charging\n")
    assert battery_low(20, root) is False                      # on its way up
    (bat / "status").write_text("Discharging\n")
    (bat / "capacity").write_text("20\n")
    assert battery_low(20, root) is False                      # at the threshold, not below it
    (bat / "capacity").write_text("7\n")
    _supply(root, "hidpp_battery_0", type="Battery", status="Discharging", capacity="80", scope="Device")
    assert battery_low(20, root) is True                       # a wireless mouse's battery does not count
    _supply(root, "BAT1", type="Battery", status="Discharging", capacity="60")
    assert battery_low(20, root) is False                      # the second battery carries the laptop
    (root / "BAT1" / "capacity").write_text("garbage\n")
    assert battery_low(20, root) is True                       # unreadable: not counted


def test_user_busy_uses_the_helpers_fresh_idle_times() -> None:
    now = 1000.0
    assert user_busy({}, now, 2.0) is False
    assert user_busy({"3": (0.4, now - 1)}, now, 2.0) is True        # typing
    assert user_busy({"3": (0.4, now - 1)}, now, 0) is False         # 0: never pause
    assert user_busy({"3": (5.0, now - 1)}, now, 2.0) is False       # away from the keyboard
    assert user_busy({"3": (0.4, now - 120)}, now, 2.0) is False     # the helper stopped reporting
    assert user_busy({"3": (9.0, now), "7": (0.1, now)}, now, 2.0) is True  # any session


def _discovery_config(tmp: Path, files: int = 30) -> Path:
    home = tmp / "home/li"
    home.mkdir(parents=True)
    for i in range(files):
        (home / f"f{i:03}.txt").write_text(f"普通文件 {i}\n", encoding="utf-8")
    (home / "方案.txt").write_text("机密★2年\n技术方案\n", encoding="utf-8")
    path = tmp / "agent.toml"
    path.write_text('[paths]\nstate_dir = "state"\n[scan]\njobs = 1\n'
                    '[discovery]\npaths = ["home"]\nstart_delay_s = 0\ncpu_share = 1.0\n'
                    'min_battery_pct = 20\nbusy_idle_s = 2\n')
    return path


def _finished(ctx) -> list[dict]:
    return list(ctx.spool.iter_events(kind="discovery.finished"))


def test_the_daemons_pass_waits_while_the_battery_is_low(tmp_path: Path) -> None:
    root = tmp_path / "sys/class/power_supply"
    _supply(root, "AC", type="Mains", online="0")
    bat = _supply(root, "BAT0", type="Battery", status="Discharging", capacity="12")
    ctx = open_context(load(_discovery_config(tmp_path)))
    comp = DiscoveryComponent(ctx, power_supply=root)
    try:
        comp.start()
        time.sleep(4)
        assert _finished(ctx) == [] and not list(ctx.spool.iter_events(kind="file.found_at_rest"))
        (bat / "status").write_text("Charging\n")   # plugged in: the pass goes on within seconds
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not _finished(ctx):
            time.sleep(0.2)
        (done,) = _finished(ctx)
        assert done["details"]["found"] == 1 and done["details"]["files"] == 31
        pauses = done["details"]["pauses"]
        assert pauses["battery"] == 1 and pauses["typing"] == 0 and pauses["seconds"] >= 3
        assert not [e for e in ctx.spool.iter_events() if "pause" in e["kind"]]  # nothing recorded per pause
    finally:
        comp.stop()
        ctx.spool.close()


def test_the_daemons_pass_waits_while_a_user_types(tmp_path: Path) -> None:
    ctx = open_context(load(_discovery_config(tmp_path)))
    typing = threading.Event()
    typing.set()

    def helper() -> None:  # what the screen-lock enforcer keeps from each helper's report (every 2 s)
        while typing.is_set():
            ctx.status.setdefault(USER_IDLE, {})["5"] = (0.3, time.monotonic())
            time.sleep(0.5)
        ctx.status[USER_IDLE]["5"] = (6.0, time.monotonic())   # the user stopped typing

    t = threading.Thread(target=helper, daemon=True)
    t.start()
    comp = DiscoveryComponent(ctx, power_supply=tmp_path / "no-battery")
    try:
        comp.start()
        time.sleep(4)
        assert _finished(ctx) == []
        typing.clear()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not _finished(ctx):
            time.sleep(0.2)
        (done,) = _finished(ctx)
        assert done["details"]["found"] == 1
        assert done["details"]["pauses"]["typing"] == 1 and done["details"]["pauses"]["battery"] == 0
    finally:
        typing.clear()
        comp.stop()
        ctx.spool.close()


def test_the_screenlock_enforcer_publishes_each_helpers_idle_time(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from baomi.agent.screenlock.enforcer import Enforcer
    (tmp_path / "agent.toml").write_text('[paths]\nstate_dir = "state"\n')
    ctx = open_context(load(tmp_path / "agent.toml"))
    try:
        enf = Enforcer(ctx)
        conn = SimpleNamespace(session="c2", uid=1000, state={"idle_ms": 350.0, "locked": False, "settings": None})
        enf.helper_state(conn)
        idle, at = ctx.status[USER_IDLE]["c2"]
        assert idle == 0.35 and abs(at - time.monotonic()) < 5
        assert user_busy(ctx.status[USER_IDLE], time.monotonic(), 2.0)
        enf.helper_gone(conn)   # the helper went away: its session no longer counts
        assert "c2" not in ctx.status[USER_IDLE]
    finally:
        ctx.spool.close()
