"""The daemon's own self-inspection (agent/selfcheck.py): the report `baomi-agent check` builds,
recorded as check.report once every [check] every_h and when the collector asks, in one thread at
idle priority, one at a time, a request at most once and at most every min_interval_s."""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import psutil
import pytest

from baomi.agent.config import load
from baomi.agent.context import open_context
from baomi.agent.discovery.polite import IDLE_NICE
from baomi.agent.selfcheck import LAST_REQUEST, SelfCheck, next_check_in, valid_request

pytestmark = pytest.mark.timeout(120)


def _ctx(tmp: Path, check: str):
    (tmp / "agent.toml").write_text('[paths]\nstate_dir = "state"\n[discovery]\nenabled = false\n'
                                    f'[check]\nprobe = false\njournalctl = false\nkernel_logs = []\n{check}')
    return open_context(load(tmp / "agent.toml"))


def _reports(ctx) -> list[dict]:
    return list(ctx.spool.iter_events(kind="check.report"))


def _wait(cond, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_the_schedule_and_the_request_ids_are_pure() -> None:
    assert next_check_in(None, 1000.0, 24, 600) == 600          # first one after the start delay
    assert next_check_in(1000.0, 1000.0 + 3600, 24, 0) == 23 * 3600
    assert next_check_in(1000.0, 1000.0 + 25 * 3600, 24, 30) == 30  # overdue: soon, not at boot
    assert next_check_in(1000.0, 2000.0, 0, 0) is None           # every_h = 0: never
    assert valid_request("3f2a9c0d11b2e4f5") == "3f2a9c0d11b2e4f5" and valid_request(17) == "17"
    assert valid_request(True) is None and valid_request("") is None and valid_request("x" * 65) is None
    assert valid_request({"id": 1}) is None and valid_request("a\nb") is None


def test_the_daily_report_runs_by_itself_at_idle_priority_with_the_real_report(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, "every_h = 0.0005\nstart_delay_s = 0\n")   # every 1.8 s
    seen: list[tuple[int, int]] = []
    from baomi.agent.commands.check import build

    def spy(cfg, probe):
        tid = threading.get_native_id()
        seen.append((os.getpriority(os.PRIO_PROCESS, tid), psutil.Process(tid).ionice().ioclass))
        assert probe is False
        return build(cfg, probe=probe)

    main_nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    sc = SelfCheck(ctx, build=spy)
    try:
        sc.start()
        _wait(lambda: len(_reports(ctx)) >= 2)
    finally:
        sc.stop()
    first = _reports(ctx)[0]
    assert first["details"]["scheduled"] is True and "requested_by_collector" not in first["details"]
    assert first["details"]["result"] in ("pass", "fail") and first["rule"] == "保密自查"
    assert {c["id"] for c in first["details"]["checks"]} >= {"network", "usb", "at_rest", "chain"}
    assert seen[0] == (IDLE_NICE, psutil.IOPRIO_CLASS_IDLE)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == main_nice   # the rest of the agent
    # kept across restarts: a new process does not run one at once
    n = len(_reports(ctx))
    sc2 = SelfCheck(ctx.__class__(ctx.config, ctx.identity, ctx.spool), build=spy)
    ctx.config.check.every_h = 1.0
    sc2.start()
    time.sleep(1.0)
    sc2.stop()
    assert len(_reports(ctx)) == n
    ctx.spool.close()


def test_requests_run_once_each_one_at_a_time_and_rate_limited(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, "every_h = 0\nmin_interval_s = 1.5\n")
    running = []
    gate = threading.Event()

    def slow(cfg, probe):
        running.append(time.monotonic())
        gate.wait(10)
        return {"report": "baomi.check", "version": 2, "time": "2026-12-01T00:00:00.000Z",
                "host": {"name": "pc", "class": "unclassified"}, "summary": {"result": "pass", "reasons": [],
                                                                              "applies": False},
                "findings": [], "sections": {}}

    sc = SelfCheck(ctx, build=slow)
    try:
        sc.start()
        assert sc.request("r-1") is True
        _wait(lambda: len(running) == 1)
        # the uploader's thread is never held up, and the same id again is nothing new
        t = time.monotonic()
        assert sc.request("r-1") is False and sc.request("r-2") is True and time.monotonic() - t < 0.5
        time.sleep(0.5)
        assert len(running) == 1                      # one at a time
        gate.set()
        _wait(lambda: len(_reports(ctx)) == 2)
        assert running[1] - running[0] >= 1.5         # at most one every min_interval_s
        assert [r["details"]["requested_by_collector"] for r in _reports(ctx)] == ["r-1", "r-2"]
        assert ctx.spool.get_meta(LAST_REQUEST) == "r-2"
        assert sc.request("r-2") is False and sc.request(None) is False
    finally:
        gate.set()
        sc.stop()
    # a restart keeps the last answered request: the collector repeating it is not run again
    sc2 = SelfCheck(ctx.__class__(ctx.config, ctx.identity, ctx.spool), build=slow)
    assert sc2.request("r-2") is False
    ctx.spool.close()
    assert len(running) == 2
