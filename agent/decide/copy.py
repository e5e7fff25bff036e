"""A file written to a medium: what is recorded, at which severity, and what is done."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from baomi.common.levels import Level
from baomi.common.policy import file_action, from_unread_part


@dataclass(frozen=True)
class WriteFacts:
    host_class: str
    medium_class: str                  # "registered" (signature verified) or "personal"
    level_ceiling: Level | None
    level: Level | None                # the verdict's level; None when the file could not be read at all
    inspectable: bool = True
    reason: str | None = None          # why not inspectable (the verdict's reason): picks the cell
    still_mounted: bool = True         # the medium is still there when the verdict is applied
    exists: bool = True                # the file is still on the medium (its writer may have deleted it)
    writer_known: bool = True          # a uid to notify
    held: bool = False                 # the content is staged on the host, not yet on the medium
    approval_id: str | None = None     # a valid 审批 covering this content, medium and user (agent/approvals.py)


@dataclass(frozen=True)
class Outcome:
    kind: str
    severity: str
    action: str | None                 # the policy cell's action; None when no decision was applied
    rule: str | None
    reason: str
    effect: str                        # "commit", "quarantine" (block), "record" (only the event)
    notify: str | None = None          # notification key (notify.MESSAGES) or None
    raise_level_to: Level | None = None
    details: dict[str, Any] = field(default_factory=dict)


def copy_severity(kind: str, action: str, level: Level) -> str:
    if kind == "file.blocked":
        return "high"
    if kind == "file.uninspectable":
        return "medium"
    if action == "notify" or level >= Level.CONFIDENTIAL:
        return "medium"
    return "low" if level > Level.PUBLIC else "info"


def blocked_severity(removed: bool) -> str:
    """After-write mode: a blocked file the agent could not remove is still on the medium."""
    return "high" if removed else "critical"


def decide_write(f: WriteFacts, overrides: Mapping[str, str] | None = None) -> Outcome:
    if f.level is None:  # the medium went away before the content could be read
        return Outcome("scan.unfinished", "high", None, None, "the file could not be read",
                       "record", details={"unfinished": "the file could not be read",
                                          "would_have_been": None})
    d = file_action(f.host_class, f.medium_class, f.level, f.level_ceiling, f.inspectable, overrides, f.reason)
    raise_to = f.level if f.medium_class == "registered" and f.level > Level.PUBLIC else None
    if not f.still_mounted and not f.held:
        return Outcome("scan.unfinished", "high" if f.level >= Level.CONFIDENTIAL else "medium", None,
                       d.rule, d.reason, "record", raise_level_to=raise_to,
                       details={"unfinished": "medium removed before the verdict was applied",
                                "would_have_been": d.action})
    if not f.exists and not f.held:
        return Outcome("file.copied", copy_severity("file.copied", d.action, f.level), d.action, d.rule,
                       d.reason, "record", raise_level_to=raise_to,
                       details={"deleted_before_verdict": True})
    if d.action == "block" and f.approval_id:   # approved: copied instead, and the approval named
        return Outcome("file.copied", "medium", "allow", d.rule, f"{d.reason}; copied under approval",
                       "commit", raise_level_to=raise_to,
                       details={"approval_id": f.approval_id, "approved_over": "block"})
    if d.action == "block":
        kind = "file.blocked"
    else:
        kind = "file.copied" if f.inspectable else "file.uninspectable"
    notify = None
    if d.action in ("block", "notify") and f.writer_known:
        notify = f"{d.action}_uninspectable" if from_unread_part(d) else d.action
    return Outcome(kind, copy_severity(kind, d.action, f.level), d.action, d.rule, d.reason,
                   "quarantine" if d.action == "block" else "commit", notify, raise_to)
