"""Idle priority for the discovery thread and its scanner workers: the user's own work always
comes first, for the CPU (nice 19) and for the disk (the idle I/O class)."""
from __future__ import annotations

import logging
import os
import threading

log = logging.getLogger("baomi.agent.discovery")
IDLE_NICE = 19


def make_idle(tid: int | None = None) -> list[str]:
    """Lower one thread (Linux priorities are per thread; default: the caller's) to nice 19 and
    the idle I/O class. Returns what could not be done (nothing stops the scan)."""
    tid = tid or threading.get_native_id()
    problems = []
    try:
        os.setpriority(os.PRIO_PROCESS, tid, IDLE_NICE)
    except OSError as exc:
        problems.append(f"nice: {exc}")
    try:
        import psutil
        psutil.Process(tid).ionice(psutil.IOPRIO_CLASS_IDLE)
    except Exception as exc:  # psutil or the kernel refusing: CPU priority is the better half anyway
        problems.append(f"ionice: {exc}")
    for p in problems:
        log.info("discovery keeps a higher priority than idle (%s)", p)
    return problems
