"""PostureComponent: on classified hosts, the network watch (违规外联), radios kept blocked, and
the periodic checks of listening services, shares and passwords. On unclassified hosts it does
nothing."""
from __future__ import annotations

import logging
import threading
from typing import Callable

from ..context import AgentContext
from ..decide.posture import parse_networks
from .checks import Checks
from .external import ExternalWatch
from .radios import RadioKeeper

log = logging.getLogger("baomi.agent.posture")


class PostureComponent:
    name = "posture"

    def __init__(self, ctx: AgentContext) -> None:
        self.ctx = ctx
        self.cfg = ctx.config.posture
        self.external: ExternalWatch | None = None
        self.checks: Checks | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        if not self.cfg.enabled or self.ctx.config.host.class_ != "classified":
            log.info("host posture: not watched (only on classified hosts, [posture] enabled)")
            return
        status = self.ctx.status.setdefault("posture", {})
        allowed = parse_networks(self.cfg.allowed_networks)
        try:
            self.external = ExternalWatch(self.ctx.record, self.cfg.probes, self.cfg.probe_interval_s,
                                          self.cfg.probe_timeout_s, allowed, self.cfg.on_external, status)
            self.external.start()
        except Exception as exc:  # no netlink here: the shares and passwords are still checked
            log.warning("host posture: the network watch did not start: %s", exc)
            self.ctx.record("agent.component_failed", severity="high",
                            details={"component": "posture.network", "error": f"{type(exc).__name__}: {exc}"})
            self.external = None
        self.checks = checks = Checks(self.ctx.record, self.cfg, self.ctx.config.state_dir)

        def checks_round() -> None:  # and what the heartbeat says of them (decide.posture.posture_status)
            checks.run_once()
            status["sharing"] = len(checks.shared)
            status["passwords_readable"] = checks.unreadable is None
        self._every(checks_round, self.cfg.check_interval_s, "posture-checks")
        if self.cfg.block_radios:
            keeper = RadioKeeper(self.ctx.record, self.cfg.rfkill_root)

            def radios_round() -> None:
                keeper.run_once()
                status["radios"] = {"blocked": len(keeper.blocked), "failed": len(keeper.failed)}
            self._every(radios_round, self.cfg.radio_poll_s, "posture-radios")
        log.info("host posture: watching routes and interfaces, %d probe(s) every %gs, on_external=%s",
                 len(self.cfg.probes), self.cfg.probe_interval_s, self.cfg.on_external)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=10)
        if self.external:
            self.external.stop()

    def _every(self, fn: Callable[[], None], interval_s: float, name: str) -> None:
        def loop() -> None:
            while not self._stop.is_set():
                try:
                    fn()
                except Exception:  # one bad round must not end the checks
                    log.exception("posture: %s failed", name)
                self._stop.wait(interval_s)
        t = threading.Thread(target=loop, name=name, daemon=True)
        t.start()
        self._threads.append(t)
