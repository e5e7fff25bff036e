"""The daemon's own self-inspection (保密自查, docs/posture.md): the report `baomi-agent check`
builds, recorded as `check.report`, once every `[check] every_h` hours and whenever the
collector's batch answer asks for one (`check_requested`, the console's 立即自查).

One thread at idle CPU and I/O priority runs the checks, one at a time: the uploader only hands
the request over and never waits for it. A request runs at most once (its id is kept in the spool's
meta table across restarts) and at most once every `[check] min_interval_s`; one that comes sooner
waits for the interval (the collector keeps asking until the report arrives)."""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from .context import AgentContext

log = logging.getLogger("baomi.agent.check")

LAST_SCHEDULED = "check_last_scheduled"   # spool meta: wall time of the last scheduled check
LAST_REQUEST = "check_last_request"       # spool meta: the id of the last request answered
MAX_REQUEST_ID = 64


def next_check_in(last: float | None, now: float, every_h: float, min_wait_s: float) -> float | None:
    """Seconds until the next scheduled check (None: never). every_h after the last one, kept
    across restarts, and never sooner than min_wait_s after the agent starts."""
    if every_h <= 0:
        return None
    if last is None:
        return min_wait_s
    return max(last + every_h * 3600.0 - now, min_wait_s, 0.0)


def valid_request(value: Any) -> str | None:
    """The collector's `check_requested`: a short printable id, or nothing."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    text = str(value)
    if not text or len(text) > MAX_REQUEST_ID or not text.isprintable():
        return None
    return text


class SelfCheck:
    name = "check"

    def __init__(self, ctx: AgentContext, build: Callable[..., dict[str, Any]] | None = None) -> None:
        self.ctx = ctx
        self.cfg = ctx.config.check
        self._build = build
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._pending: str | None = None
        self._last_run = 0.0   # monotonic time of the last check this process ran (0: none yet)
        self._thread: threading.Thread | None = None
        self.runs = 0

    # -- from other threads
    def request(self, value: Any) -> bool:
        """The collector asked for a report: queue it (returns at once). False when there is
        nothing new to do (already answered, already queued, or not an id)."""
        rid = valid_request(value)
        if rid is None:
            return False
        with self._lock:
            if rid == self._pending or rid == self.ctx.spool.get_meta(LAST_REQUEST, ""):
                return False
            self._pending = rid
        log.info("check: the collector asked for a self-inspection report (request %s)", rid)
        self._wake.set()
        return True

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="baomi-check", daemon=True)
        self._thread.start()
        if self.cfg.every_h > 0:
            log.info("check: a self-inspection report every %gh", self.cfg.every_h)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    # -- the thread
    def _last_scheduled(self) -> float | None:
        value = self.ctx.spool.get_meta(LAST_SCHEDULED, "")
        try:
            return float(value) if value else None
        except ValueError:
            return None

    def _loop(self) -> None:
        from .discovery.polite import make_idle
        make_idle()   # the journal and kernel logs are read here: the user's work comes first
        started = time.monotonic()
        while not self._stop.is_set():
            now_mono = time.monotonic()
            with self._lock:
                pending = self._pending
            request_in = None
            if pending is not None:
                request_in = 0.0 if not self._last_run else \
                    max(0.0, self._last_run + self.cfg.min_interval_s - now_mono)
            delay = max(0.0, self.cfg.start_delay_s - (now_mono - started))
            scheduled_in = next_check_in(self._last_scheduled(), time.time(), self.cfg.every_h, delay)
            if request_in == 0.0:
                self._run(requested_by=pending)
                continue
            if scheduled_in is not None and scheduled_in <= 0.0:
                self._run(scheduled=True)
                continue
            waits = [w for w in (request_in, scheduled_in) if w is not None]
            self._wake.wait(min(waits) if waits else None)
            self._wake.clear()

    def _run(self, requested_by: str | None = None, scheduled: bool = False) -> None:
        from .commands.check import build, record_into
        self._last_run = time.monotonic()
        extra: dict[str, Any] = {"requested_by_collector": requested_by} if requested_by else {"scheduled": True}
        try:
            rep = (self._build or build)(self.ctx.config, probe=self.cfg.probe)
            record_into(self.ctx.record, rep, **extra)
            self.runs += 1
        except Exception as exc:  # a failed check is reported; the next one is tried on schedule
            log.exception("check: the self-inspection failed")
            self.ctx.record("agent.component_failed", severity="high",
                            details={"component": "check", "error": f"{type(exc).__name__}: {exc}", **extra})
        finally:
            if scheduled:
                self.ctx.spool.set_meta(LAST_SCHEDULED, str(time.time()))
            if requested_by:
                self.ctx.spool.set_meta(LAST_REQUEST, requested_by)
                with self._lock:
                    if self._pending == requested_by:
                        self._pending = None


def selfcheck_of(ctx: AgentContext) -> SelfCheck:
    """The agent's one SelfCheck (the component, or made on first use: the uploader's tests)."""
    s = getattr(ctx, "selfcheck", None)
    if s is None:
        s = ctx.selfcheck = SelfCheck(ctx)  # type: ignore[attr-defined]
    return s


class SelfCheckComponent:
    """Started by `baomi-agent run` (daemon.COMPONENTS)."""
    name = "check"

    def __init__(self, ctx: AgentContext) -> None:
        self.check = selfcheck_of(ctx)

    def start(self) -> None:
        self.check.start()

    def stop(self) -> None:
        self.check.stop()
