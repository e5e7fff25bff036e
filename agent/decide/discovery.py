"""Discovery on unclassified hosts: what a file found on the host's own disks means, and what
changed since the last pass. 004 计算机规则 2: an unclassified PC must not store or process
classified information, so a file marked confidential or above is a finding; internal (工作秘密)
is not classified information and is not reported."""
from __future__ import annotations

from dataclasses import dataclass

from baomi.common.levels import Level

# the lowest level that is classified information (国家秘密 and the enterprise ranks mapped onto it)
CLASSIFIED_FROM = Level.CONFIDENTIAL
SEVERITY: dict[Level, str] = {Level.CONFIDENTIAL: "high", Level.SECRET: "high", Level.TOP_SECRET: "critical"}
RULE = "004 计算机规则 2"
RULE_TEXT = "不得在非涉密计算机尤其是在连接互联网或其他公共信息网的计算机上存储、处理涉密信息和使用涉密移动存储介质。"


@dataclass(frozen=True)
class Change:
    kind: str | None        # "file.found_at_rest", "file.at_rest_resolved" or None (nothing to record)
    severity: str
    reason: str             # found, level_changed, removed, declassified, unchanged


def applies(host_class: str, enabled: bool) -> bool:
    """Discovery runs on unclassified hosts only: a classified host may hold classified files."""
    return enabled and host_class == "unclassified"


def is_finding(level: Level | None) -> bool:
    return level is not None and level >= CLASSIFIED_FROM


def change(before: Level | None, after: Level | None, present: bool = True) -> Change:
    """before: the level on record after the last pass (None: never seen); after: the level now
    (None: not inspectable this time, keep what is on record); present: the file still exists."""
    was = is_finding(before)
    if not present:
        return Change("file.at_rest_resolved", "info", "removed") if was else Change(None, "info", "unchanged")
    if after is None:
        return Change(None, "info", "unchanged")
    now = is_finding(after)
    if now and not was:
        return Change("file.found_at_rest", SEVERITY[after], "found")  # type: ignore[index]
    if now and before != after:
        return Change("file.found_at_rest", SEVERITY[after], "level_changed")  # type: ignore[index]
    if was and not now:
        return Change("file.at_rest_resolved", "info", "declassified")
    return Change(None, "info", "unchanged")


def pause_s(busy_s: float, cpu_share: float) -> float:
    """How long to rest after `busy_s` of work so that work stays at `cpu_share` of the time."""
    if cpu_share >= 1 or busy_s <= 0:
        return 0.0
    return busy_s * (1 - cpu_share) / cpu_share


def next_pass_in(last_pass: float | None, now: float, interval_s: float, min_wait_s: float = 0.0) -> float:
    """Seconds until the next scheduled pass: interval_s after the last one finished, kept across
    restarts (a restart neither skips nor repeats a pass), and never sooner than min_wait_s (the
    component's start delay after the agent starts: a booting desktop is busy enough)."""
    if last_pass is None:
        return min_wait_s
    return max(last_pass + interval_s - now, min_wait_s, 0.0)
