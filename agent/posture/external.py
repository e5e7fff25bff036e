"""违规外联: route and interface changes within seconds (netlink), outside probes on a schedule
and on every change, and the optional isolation effect."""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict
from typing import Any, Callable

from ..decide.posture import Link, NetChange, Net, Route, decide_external, diff_changes, outside_changes
from .netlink import ChangeWatch, Kernel, Snapshot
from .probe import Prober, ProbeResult, parse_probe

log = logging.getLogger("baomi.agent.posture")
Record = Callable[..., Any]


def _link_facts(link: Link | None) -> dict[str, Any] | None:
    if link is None:
        return None
    return {"name": link.name, "kind": link.kind, "up": link.up, "addresses": list(link.addresses)}


class ExternalWatch:
    def __init__(self, record: Record, probes: list[str], interval_s: float, timeout_s: float,
                 allowed: tuple[Net, ...], on_external: str, status: dict[str, Any]) -> None:
        self.record, self.allowed, self.on_external = record, allowed, on_external
        self.interval_s, self.status = interval_s, status
        self.prober = Prober([parse_probe(p) for p in probes], timeout_s)
        self.kernel = Kernel()
        self.changes = ChangeWatch()
        self.snap = self.kernel.snapshot()
        # the interfaces the host had when the agent started are its own; any later one is news
        self.known_links = set(self.snap.links)
        self.current: list[NetChange] = []
        self.reachable: dict[str, bool] = {}
        self._since: dict[str, float] = {}   # probe -> when it first answered (unix time)
        self._probe_now = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self._update(self.snap, at_start=True)
        self._probe_now.set()  # the first round at once: a host may start already connected
        for target, name in ((self._watch, "posture-netlink"), (self._probe_loop, "posture-probe")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        self._probe_now.set()
        for t in self._threads:
            t.join(timeout=10)
        self.prober.close()
        self.changes.close()
        self.kernel.close()

    # -- routes and interfaces
    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                if not self.changes.wait(1.0):
                    continue
                snap = self.kernel.snapshot()
            except Exception:  # keep watching; the next change or probe round tries again
                log.exception("posture: reading the network state failed")
                self._stop.wait(1.0)
                continue
            if snap != self.snap:
                self._update(snap)
            # probe even when the snapshot looks as before: a route that came and went between two
            # snapshots may have been probed while it was there, and that answer is now stale
            self._probe_now.set()

    def _update(self, snap: Snapshot, at_start: bool = False) -> None:
        self.snap = snap
        now = outside_changes(snap.links.values(), snap.routes, self.known_links, self.allowed)
        for c in diff_changes(self.current, now):
            self.record("host.network_changed", severity="high", action="audit", rule="posture.network",
                        details={"reason": c.reason, "interface": c.interface, "subject": c.subject,
                                 "route": asdict(c.route) if c.route else None, "at_start": at_start,
                                 "link": _link_facts(snap.links.get(c.interface))})
        self.current = now
        # a start-time interface that goes away and comes back (a modem replugged) is news then
        self.known_links &= set(snap.links)
        self.status["outside_routes"] = [c.subject for c in now if c.route]

    # -- probes
    def _probe_loop(self) -> None:
        while not self._stop.is_set():
            self._probe_now.wait(self.interval_s)
            self._probe_now.clear()
            if self._stop.is_set():
                return
            try:
                self.probe_once()
            except Exception:
                log.exception("posture: probe round failed")

    def probe_once(self) -> list[ProbeResult]:
        results = self.prober.run()
        for r in results:
            was = self.reachable.get(r.probe.text, False)
            if r.ok and not was:
                self._since[r.probe.text] = time.time()
                self._external(r)
            elif was and not r.ok:  # isolation worked, or the modem left: the auditor sees how long
                self.record("host.external_connection_ended", severity="medium", rule="posture.external",
                            details={"probe": r.probe.text, "error": r.error,
                                     "since": self._since.pop(r.probe.text, None)})
            self.reachable[r.probe.text] = r.ok
        self.status["last_probe"] = time.time()
        self.status["reachable"] = sorted(p for p, ok in self.reachable.items() if ok)
        return results

    def _external(self, r: ProbeResult) -> None:
        # fresh, not self.snap: the probe may have run before the watch saw the new route
        snap = self.kernel.snapshot()
        route = self.kernel.route_to(r.address, snap) if r.address and r.probe.port else None
        link = snap.links.get(route.interface) if route else None
        outcome = decide_external(self.on_external, link, route, self.allowed)
        effects = [self._apply(outcome.effect, link, route)] if outcome.effect != "none" else []
        log.warning("posture: %s answered from outside via %s (%s)", r.probe.text,
                    link.name if link else "?", outcome.reason)
        self.record(outcome.kind, severity=outcome.severity, action=outcome.action, rule="posture.external",
                    details={"probe": r.probe.text, "address": r.address, "local_address": r.local_address,
                             "interface": link.name if link else None, "link": _link_facts(link),
                             "route": asdict(route) if route else None, "reason": outcome.reason,
                             "on_external": self.on_external, "effects": effects})

    def _apply(self, effect: str, link: Link | None, route: Route | None) -> dict[str, Any]:
        assert link is not None
        done: dict[str, Any] = {"effect": effect, "interface": link.name}
        try:
            if effect == "link_down":
                self.kernel.link_down(link)
            else:
                assert route is not None
                done["route"] = route.dst
                self.kernel.route_delete(route, link)
            done["ok"] = True
        except Exception as exc:
            log.error("posture: %s on %s failed: %s", effect, link.name, exc)
            done.update(ok=False, error=f"{type(exc).__name__}: {exc}")
        return done
