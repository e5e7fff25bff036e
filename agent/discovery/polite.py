"""Idle priority for the discovery thread and its scanner workers: the user's own work always
comes first, for the CPU (nice 19) and for the disk (the idle I/O class). And pauses: while the
battery runs low, or while a user types or moves the mouse (docs/posture.md "Polite")."""
from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable

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


# -- pausing: a low battery, a user at the keyboard ---------------------------------------------
POWER_SUPPLY = Path("/sys/class/power_supply")


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return ""


def battery_low(min_pct: float, root: Path = POWER_SUPPLY) -> bool:
    """A battery (the kernel's power_supply class, `type` Battery) is discharging below min_pct.
    Charging, full or on mains: not low. No battery (a desktop), or a capacity that cannot be read:
    not low. Several batteries: low when every discharging one is (a laptop with two runs on
    either)."""
    if min_pct <= 0:
        return False
    levels = []
    try:
        supplies = sorted(root.iterdir())
    except OSError:
        return False
    for d in supplies:
        if _read(d / "type") != "Battery" or _read(d / "status") != "Discharging":
            continue
        if _read(d / "scope") == "Device":  # a wireless mouse's or a phone's battery, not the host's
            continue
        try:
            levels.append(float(_read(d / "capacity")))
        except ValueError:
            continue
    return bool(levels) and all(level < min_pct for level in levels)


def user_busy(sessions: dict[str, tuple[float, float]], now: float, busy_idle_s: float,
              stale_s: float = 30.0) -> bool:
    """A desktop session's user is typing or moving the mouse: its helper last said it was idle
    for less than busy_idle_s. sessions: session id -> (idle seconds the helper reported, the
    monotonic time it reported it); a report older than stale_s counts for nothing (a helper that
    stopped reporting must not stop discovery for good)."""
    if busy_idle_s <= 0:
        return False
    return any(now - at <= stale_s and idle < busy_idle_s for idle, at in sessions.values())


USER_IDLE = "user_idle"   # ctx.status key the screen-lock enforcer keeps: session -> (idle_s, monotonic)


class Pauser:
    """Between files, wait while the battery is low or a user is busy at the keyboard. Each pause
    is counted by reason (discovery.finished's `pauses`); nothing is recorded per pause."""
    BATTERY_EVERY_S = 30.0   # sysfs is read at most this often while scanning
    POLL_S = 1.0

    def __init__(self, min_battery_pct: float, busy_idle_s: float, status: dict[str, Any] | None = None,
                 root: Path = POWER_SUPPLY, clock: Callable[[], float] = time.monotonic) -> None:
        self.min_battery_pct, self.busy_idle_s = min_battery_pct, busy_idle_s
        self.status = status if status is not None else {}
        self.root, self.clock = root, clock
        self.counts = {"battery": 0, "typing": 0}
        self.paused_s = 0.0
        self._battery_at = -1e18
        self._battery_low = False

    def _reason(self, battery_every_s: float) -> str | None:
        now = self.clock()
        if now - self._battery_at >= battery_every_s:
            self._battery_at = now
            self._battery_low = battery_low(self.min_battery_pct, self.root)
        if self._battery_low:
            return "battery"
        if user_busy(dict(self.status.get(USER_IDLE) or {}), now, self.busy_idle_s):
            return "typing"
        return None

    def wait(self, stop: threading.Event | None = None) -> None:
        reason = self._reason(self.BATTERY_EVERY_S)
        if reason is None:
            return
        started = self.clock()
        log.info("discovery: paused (%s)", reason)
        self.counts[reason] += 1
        stop = stop or threading.Event()
        while reason is not None and not stop.wait(self.POLL_S):
            last = reason
            reason = self._reason(self.BATTERY_EVERY_S if last != "battery" else 5.0)
            if reason is not None and reason != last:
                self.counts[reason] += 1
        self.paused_s += self.clock() - started
        log.info("discovery: resumed after %.0fs", self.clock() - started)

    def summary(self) -> dict[str, Any]:
        return {**self.counts, "seconds": round(self.paused_s, 1)}
