"""A print job: whether it reaches the printer, whether its pages are watermarked,
what is recorded and whether the user is told. Pure: facts in, a PrintOutcome out."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Collection, Mapping

from baomi.common.levels import Level
from baomi.common.policy import from_unread_part, print_action

KIND = "print.job"
WATERMARK_REQUIRED_RULE = "print.watermark_required"  # agent.toml [print] watermark_required


@dataclass(frozen=True)
class PrintFacts:
    host_class: str
    printer_class: str                 # "registered" (in the printer registry) or "unregistered"
    level_ceiling: Level | None        # registered printers: the registration's ceiling
    level: Level                       # the highest level of the job's documents
    inspectable: bool = True           # every document could be read (and the agent answered)
    user_known: bool = True            # the CUPS job user is a local account to notify
    stampable: bool = True             # the job's data can carry the watermark (PDF, or made PDF)


@dataclass(frozen=True)
class PrintOutcome:
    action: str
    rule: str
    reason: str
    kind: str
    severity: str
    forward: bool                      # the job goes on to the real backend
    watermark: bool                    # stamp its pages before they go
    notify: str | None                 # notification key (agent/print/messages) or None


def print_severity(action: str, level: Level, inspectable: bool) -> str:
    if action == "block":
        return "high"
    if not inspectable:
        return "medium"  # printed without being read: worth a look
    if action == "notify" or level >= Level.CONFIDENTIAL:
        return "medium"
    return "low" if level > Level.PUBLIC else "info"


def decide_print(f: PrintFacts, watermark_levels: Collection[str],
                 overrides: Mapping[str, str] | None = None, watermark_required: bool = False) -> PrintOutcome:
    d = print_action(f.host_class, f.printer_class, f.level, f.level_ceiling, f.inspectable, overrides)
    forward = d.action != "block"
    # a document nobody could read is stamped as if it were at the highest level the
    # watermark covers: its printout must be traceable all the more
    stamp = forward and bool(watermark_levels) and (f.level.id in watermark_levels or not f.inspectable)
    if stamp and not f.stampable:
        if watermark_required:  # the site would rather not print than print untraceably
            return PrintOutcome("block", WATERMARK_REQUIRED_RULE, "the watermark is required and cannot be applied",
                                KIND, "high", False, False, "print_block" if f.user_known else None)
        stamp = False
    notify = None
    if d.action in ("block", "notify") and f.user_known:
        notify = f"print_{d.action}" + ("_uninspectable" if from_unread_part(d) else "")
    return PrintOutcome(d.action, d.rule, d.reason, KIND, print_severity(d.action, f.level, f.inspectable),
                        forward, stamp, notify)
