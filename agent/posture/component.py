"""PostureComponent: on classified hosts, the network watch (违规外联) and the periodic checks
of listening services, shares and passwords. On unclassified hosts it does nothing."""
from __future__ import annotations

import logging
import threading

from ..context import AgentContext
from ..decide.posture import parse_networks
from .checks import Checks
from .external import ExternalWatch

log = logging.getLogger("baomi.agent.posture")


class PostureComponent:
    name = "posture"

    def __init__(self, ctx: AgentContext) -> None:
        self.ctx = ctx
        self.cfg = ctx.config.posture
        self.external: ExternalWatch | None = None
        self.checks: Checks | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

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
        self.checks = Checks(self.ctx.record, self.cfg, self.ctx.config.state_dir)
        self._thread = threading.Thread(target=self._check_loop, name="posture-checks", daemon=True)
        self._thread.start()
        log.info("host posture: watching routes and interfaces, %d probe(s) every %gs, on_external=%s",
                 len(self.cfg.probes), self.cfg.probe_interval_s, self.cfg.on_external)

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)
        if self.external:
            self.external.stop()

    def _check_loop(self) -> None:
        assert self.checks is not None
        while not self._stop.is_set():
            try:
                self.checks.run_once()
            except Exception:  # one bad round must not end the checks
                log.exception("posture: checks failed")
            self._stop.wait(self.cfg.check_interval_s)
