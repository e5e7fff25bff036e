"""DiscoveryComponent: on unclassified hosts, a discovery pass on the [discovery] schedule, in
one thread at idle CPU and I/O priority. On classified hosts it does nothing."""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from ..context import AgentContext
from ..decide.discovery import applies, next_pass_in
from .index import Index
from .polite import IDLE_NICE, POWER_SUPPLY, Pauser, make_idle
from .run import Busy, Discovery

log = logging.getLogger("baomi.agent.discovery")


class DiscoveryComponent:
    name = "discovery"

    def __init__(self, ctx: AgentContext, power_supply: Path = POWER_SUPPLY) -> None:
        self.ctx = ctx
        self.cfg = ctx.config.discovery
        self.power_supply = power_supply  # the kernel's power_supply class (tests: a directory)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if not applies(self.ctx.config.host.class_, self.cfg.enabled):
            log.info("discovery: off (only on unclassified hosts, [discovery] enabled)")
            return
        self._thread = threading.Thread(target=self._loop, name="discovery", daemon=True)
        self._thread.start()
        log.info("discovery: %s every %gs, cpu_share %g", ", ".join(map(str, self.cfg.paths)),
                 self.cfg.interval_s, self.cfg.cpu_share)

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)

    def _last_pass(self) -> float | None:
        index = Index(self.ctx.config.state_dir)
        try:
            value = index.meta("last_pass")
        finally:
            index.close()
        return float(value) if value else None

    def _loop(self) -> None:
        make_idle()
        status = self.ctx.status.setdefault("discovery", {})
        min_wait = self.cfg.start_delay_s
        while not self._stop.wait(next_pass_in(self._last_pass(), time.time(), self.cfg.interval_s, min_wait)):
            min_wait = 0.0
            from ..scan.engine import Scanner
            try:
                # a scanner per pass: no worker processes hold memory between passes
                with Scanner(self.ctx.config, nice=IDLE_NICE, idle_io=True) as scanner:
                    # the screen-lock enforcer keeps each session's idle time in ctx.status
                    pauser = Pauser(self.cfg.min_battery_pct, self.cfg.busy_idle_s, self.ctx.status,
                                    self.power_supply)
                    stats = Discovery(self.ctx.config, self.ctx.record, scanner,
                                      pauser=pauser).run_pass(stop=self._stop)
                status.update(last_pass=stats.number, files=stats.files, found=stats.found)
            except Busy:
                log.info("discovery: a pass (discover --now) is running; next round later")
                self._stop.wait(self.cfg.start_delay_s or 60.0)
            except Exception as exc:  # one bad pass must not end discovery
                log.exception("discovery: the pass failed")
                self.ctx.record("agent.component_failed", severity="high",
                                details={"component": "discovery", "error": f"{type(exc).__name__}: {exc}"})
                self._stop.wait(self.cfg.interval_s)
