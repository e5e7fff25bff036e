"""Discovery yields to the user's work: its thread and its scanner workers run at nice 19 and in
the idle I/O class, read back from the kernel."""
from __future__ import annotations

import os
import threading
from pathlib import Path

import psutil
import pytest

from baomi.agent.config import load
from baomi.agent.discovery.polite import IDLE_NICE, make_idle
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
