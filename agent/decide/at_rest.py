"""A file that is already on a medium when it is watched (the inventory)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from baomi.common.levels import Level
from baomi.common.policy import file_action


@dataclass(frozen=True)
class AtRestOutcome:
    kind: str | None                   # "file.discovered", or None: counted in medium.inventory only
    severity: str
    rule: str | None
    reason: str
    raise_level_to: Level | None = None


def decide_at_rest(host_class: str, medium_class: str, level: Level,
                   level_ceiling: Level | None = None,
                   overrides: Mapping[str, str] | None = None) -> AtRestOutcome:
    """A marked file is reported when the copy policy would have blocked it: it got onto
    the medium some other way (another PC, before baomi, a registration since revoked)."""
    raise_to = level if medium_class == "registered" and level > Level.PUBLIC else None
    # a marking found in the part that could be read is a marked file, whatever the rest holds
    if level == Level.PUBLIC:
        return AtRestOutcome(None, "info", None, "nothing to report", raise_to)
    d = file_action(host_class, medium_class, level, level_ceiling, True, overrides)
    if d.action != "block":
        return AtRestOutcome(None, "info", d.rule, d.reason, raise_to)
    where = "a personal medium" if medium_class == "personal" else "a medium above its ceiling"
    return AtRestOutcome("file.discovered", "high", d.rule, f"marked file already on {where}", raise_to)


def inventory_severity(discovered: int) -> str:
    return "medium" if discovered else "info"
