"""The report sections that come from what the agent (and the kernel) recorded rather than from
the host as it is now: USB storage history, media seen, screen lock, classified files at rest,
quarantine and blocked copies, and the agent's own event chain. Each returns (facts, findings)."""
from __future__ import annotations

from collections import Counter
from typing import Any, Sequence

from baomi.common.events import event_hash

from ..config import AgentConfig
from ..decide.discovery import SEVERITY, applies as discovery_applies
from . import usb_history

Finding = dict[str, Any]
Section = tuple[dict[str, Any], list[Finding]]
MEDIA_KINDS = ("medium.inserted", "medium.allowed", "medium.read_only", "medium.denied")


def _f(section: str, finding: str, severity: str, details: dict[str, Any]) -> Finding:
    return {"section": section, "finding": finding, "severity": severity, "details": details}


def usb(cfg: AgentConfig, events: Sequence[dict[str, Any]]) -> Section:
    """Every USB storage device ever connected. One the kernel saw but the agent never recorded
    (before baomi was installed, or while it was not running) is a finding for the officer."""
    c = cfg.check
    from_logs, problems = usb_history.from_kern_logs(c.kernel_logs)
    from_journal, more = usb_history.from_journal(c.journal_export, c.journalctl)
    ours = usb_history.from_agent(events)
    devices = usb_history.merge([*from_logs, *from_journal, *ours])
    known = {d.key for d in ours}
    findings = [_f("usb", "unrecorded_storage", "medium", d.to_json()) for d in devices if d.key not in known]
    return {"devices": [d.to_json() for d in devices], "problems": problems + more}, findings


def media(cfg: AgentConfig, events: Sequence[dict[str, Any]]) -> Section:
    """Registered versus personal media the agent saw (by medium.inserted), and what it did."""
    seen: dict[str, dict[str, Any]] = {}
    actions: Counter[str] = Counter()
    for e in events:
        if e["kind"] not in MEDIA_KINDS:
            continue
        m = e.get("medium") or {}
        key = m.get("registry_id") or "/".join(str(m.get(k) or "") for k in ("vendor_id", "product_id", "serial",
                                                                             "fs_uuid"))
        if e["kind"] == "medium.inserted":
            cur = seen.setdefault(key, {"class": m.get("class"), "registry_id": m.get("registry_id"),
                                        "product": m.get("product"), "serial": m.get("serial"),
                                        "first_seen": e["time"], "times": 0})
            cur.update(last_seen=e["time"], times=cur["times"] + 1)
        else:
            actions[e["kind"]] += 1
    by_class = Counter(str(v["class"]) for v in seen.values())
    severity = "high" if cfg.host.class_ == "classified" else "medium"
    findings = [_f("media", "personal_medium", severity, v) for v in seen.values() if v["class"] == "personal"]
    return {"media": list(seen.values()), "by_class": dict(by_class), "actions": dict(actions)}, findings


def screenlock(cfg: AgentConfig, events: Sequence[dict[str, Any]]) -> Section:
    s = cfg.screenlock
    last = {k: next((e["time"] for e in reversed(events) if e["kind"] == k), None)
            for k in ("screenlock.enforced", "screenlock.failed", "screenlock.absence")}
    facts = {"enabled": s.enabled, "idle_limit_s": s.idle_limit_s, "absence_min": s.absence_min,
             "absence_action": s.absence_action, "manage_desktop_settings": s.manage_desktop_settings,
             "last_enforced": last["screenlock.enforced"], "last_failed": last["screenlock.failed"],
             "last_absence": last["screenlock.absence"]}
    findings = []
    if not s.enabled:
        findings.append(_f("screenlock", "disabled", "high", {"enabled": False}))
    failed = [e for e in events if e["kind"] in ("screenlock.failed", "screenlock.disputed")]
    if failed:
        findings.append(_f("screenlock", "lock_failed", "high",
                           {"count": len(failed), "last": failed[-1]["time"], "kinds": sorted({e["kind"] for e in failed})}))
    return facts, findings


def at_rest(cfg: AgentConfig, events: Sequence[dict[str, Any]]) -> Section:
    """Classified files discovery holds on record now, by level (unclassified hosts)."""
    from ..discovery.run import found_by_level, last_pass
    if not discovery_applies(cfg.host.class_, cfg.discovery.enabled):
        return {"applies": False}, []
    found = found_by_level(cfg.state_dir)
    last = last_pass(cfg.state_dir)
    facts = {"applies": True, "by_level": {k: len(v) for k, v in found.items()}, "files": found, "last_pass": last}
    from baomi.common.levels import Level
    findings = [_f("at_rest", "classified_file", SEVERITY[Level.parse(level)], {"level": level, "path": p})
                for level, paths in sorted(found.items()) for p in paths]
    if last is None:
        findings.append(_f("at_rest", "never_scanned", "medium", {"paths": [str(p) for p in cfg.discovery.paths]}))
    return facts, findings


def quarantine(cfg: AgentConfig, events: Sequence[dict[str, Any]]) -> Section:
    """Copies blocked and files quarantined: the controls at work, facts rather than findings."""
    counts = Counter(e["kind"] for e in events if e["kind"] in ("file.blocked", "file.copied", "quarantine.restored",
                                                              "print.job"))
    from ..quarantine import SUFFIX
    qdir = cfg.state_dir / "quarantine"
    held = sorted(qdir.glob(f"*{SUFFIX}")) if qdir.is_dir() else []
    blocked_by_level = Counter(str((e.get("file") or {}).get("level")) for e in events if e["kind"] == "file.blocked")
    facts = {"quarantined_files": len(held), "quarantined_bytes": sum(p.stat().st_size for p in held),
             "blocked_copies": counts["file.blocked"], "copies": counts["file.copied"],
             "restored": counts["quarantine.restored"], "blocked_by_level": dict(blocked_by_level)}
    findings = []
    if counts["quarantine.restored"]:
        findings.append(_f("quarantine", "restored", "medium", {"count": counts["quarantine.restored"]}))
    return facts, findings


def chain(events: Sequence[dict[str, Any]]) -> Section:
    """The agent's own chain: each kept event hashes right and links to the one before; a hole in
    the sequence numbers is announced (agent.gap) or a finding. Old delivered events are pruned
    from the spool, so a hole before the first kept event is expected."""
    announced = [(int(e["details"].get("first_seq", 0)), int(e["details"].get("last_seq", 0)))
                 for e in events if e["kind"] == "agent.gap" and e.get("details")]
    findings = [_f("chain", "events_dropped", "medium", e["details"]) for e in events if e["kind"] == "agent.gap"]
    covered = _merged(announced)
    broken, holes = [], []
    for prev, cur in zip(events, events[1:]):
        if cur["seq"] == prev["seq"] + 1 and cur.get("prev_hash") != prev.get("hash"):
            broken.append(cur["seq"])
        elif cur["seq"] > prev["seq"] + 1:
            lo, hi = prev["seq"] + 1, cur["seq"] - 1
            if not any(a <= lo and hi <= b for a, b in covered):
                holes.append([lo, hi])
    broken += [e["seq"] for e in events if event_hash(e) != e.get("hash")]
    if broken:
        findings.append(_f("chain", "chain_broken", "critical", {"seqs": sorted(set(broken))[:50]}))
    if holes:
        findings.append(_f("chain", "unannounced_gap", "high", {"ranges": holes[:50]}))
    facts = {"events": len(events), "first_seq": events[0]["seq"] if events else None,
             "last_seq": events[-1]["seq"] if events else None, "announced_gaps": announced}
    return facts, findings


def _merged(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Announced ranges joined where they touch: one overflow is often announced in several runs."""
    out: list[tuple[int, int]] = []
    for a, b in sorted(ranges):
        if out and a <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out
