"""`baomi-agent check`: the self-inspection report (保密自查), from what the host shows now and
what the agent recorded. Each finding has a section, a severity and the rule it rests on."""
from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from baomi.common.events import utcnow

from .. import __version__
from ..config import AgentConfig
from ..heartbeat import config_version
from ..decide.posture import REPORT_RULES, outside_changes, parse_networks, summarize
from .checks import Checks, password_details
from .probe import Prober, parse_probe
from .radios import radios

HISTORY_KINDS = ("host.external_connection", "host.external_connection_ended", "host.network_changed",
                 "host.radio_unblocked", "agent.gap")


def _finding(section: str, finding: str, severity: str, details: dict[str, Any]) -> dict[str, Any]:
    return {"section": section, "finding": finding, "severity": severity, "details": details}


def network(cfg: AgentConfig, probe: bool) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    from .netlink import Kernel
    allowed = parse_networks(cfg.posture.allowed_networks)
    kernel = Kernel()
    try:
        snap = kernel.snapshot()
    finally:
        kernel.close()
    changes = outside_changes(snap.links.values(), snap.routes, set(snap.links), allowed)
    findings = [_finding("network", c.reason, "high", {"interface": c.interface, "subject": c.subject})
                for c in changes]
    results = []
    if probe and cfg.posture.probes:
        prober = Prober([parse_probe(p) for p in cfg.posture.probes], cfg.posture.probe_timeout_s)
        try:
            results = prober.run()
        finally:
            prober.close()
    findings += [_finding("network", "external_connection", "critical",
                          {"probe": r.probe.text, "address": r.address}) for r in results if r.ok]
    facts = {"interfaces": [{"name": l.name, "kind": l.kind, "up": l.up, "addresses": list(l.addresses)}
                            for l in snap.links.values()],
             "routes": [{"dst": r.dst, "interface": r.interface, "gateway": r.gateway, "table": r.table}
                        for r in snap.routes],
             "probes": [{"probe": r.probe.text, "answered": r.ok, "address": r.address, "error": r.error}
                        for r in results],
             "probed": bool(probe and cfg.posture.probes)}
    return facts, findings


def wireless(cfg: AgentConfig) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    found = radios(cfg.posture.rfkill_root)
    findings = [_finding("wireless", "radio_on", "high", {"radio": r.id, "type": r.type, "name": r.name})
                for r in found if not r.soft and not r.hard]
    return {"radios": [asdict(r) for r in found]}, findings


def _checks(cfg: AgentConfig) -> Checks:
    return Checks(lambda *a, **k: None, cfg.posture, cfg.state_dir)  # facts only, nothing recorded


def sharing(cfg: AgentConfig) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    shares = _checks(cfg).sharing_findings()
    return {"shares": shares}, [_finding("sharing", s["type"], "high", s) for s in shares]


def passwords(cfg: AgentConfig) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    try:
        found = _checks(cfg).password_findings(time.time())
    except OSError as exc:
        return {"error": str(exc)}, [_finding("passwords", "unreadable", "medium", {"error": str(exc)})]
    return ({"max_age_days": cfg.posture.max_password_age_days},
            [_finding("passwords", f.finding, f.severity, password_details(a, f)) for a, f in found])


def recorded(cfg: AgentConfig) -> list[dict[str, Any]]:
    """Every event the agent still keeps, oldest first (nothing when it never ran here)."""
    if not (cfg.state_dir / "spool.db").exists():
        return []
    from ..agent_key import load_or_create
    from ..spool import open_spool
    spool = open_spool(cfg.state_dir, load_or_create(cfg.state_dir).agent_id)
    try:
        return list(spool.iter_events())
    finally:
        spool.close()


def history(events: list[dict[str, Any]], limit: int = 200) -> list[dict[str, Any]]:
    """The agent's own record of posture events, newest last."""
    return [{"time": e["time"], "kind": e["kind"], "severity": e["severity"], "details": e.get("details")}
            for e in events if e["kind"] in HISTORY_KINDS][-limit:]


def build(cfg: AgentConfig, probe: bool = True) -> dict[str, Any]:
    from . import records
    events = recorded(cfg)
    sections: dict[str, Any] = {}
    findings: list[dict[str, Any]] = []
    for name, (facts, found) in (("network", network(cfg, probe)), ("wireless", wireless(cfg)),
                                 ("sharing", sharing(cfg)), ("passwords", passwords(cfg)),
                                 ("usb", records.usb(cfg, events)), ("media", records.media(cfg, events)),
                                 ("screenlock", records.screenlock(cfg, events)),
                                 ("at_rest", records.at_rest(cfg, events)),
                                 ("quarantine", records.quarantine(cfg, events)), ("chain", records.chain(events))):
        sections[name] = facts
        findings += found
    for f in findings:
        f["rule"] = {"source": REPORT_RULES[f["section"]][0], "text": REPORT_RULES[f["section"]][1]}
    return {"report": "baomi.check", "version": 2, "time": utcnow(),
            "host": {"name": cfg.host.name, "class": cfg.host.class_}, "agent_version": __version__,
            "policy_version": config_version(cfg),
            "summary": summarize(cfg.host.class_, findings), "findings": findings, "sections": sections,
            "history": history(events), "rules": {k: {"source": s, "text": t} for k, (s, t) in REPORT_RULES.items()}}
