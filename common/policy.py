"""The policy matrix (docs/policy.md): pure functions, no I/O.

Three decisions:

- device_action(): what happens to a medium when it appears on this host
  (deny / read_only / allow), from host class, medium class, the registration
  record and the site's overrides;
- file_action(): what happens to a file written to a medium (block / notify /
  audit / allow), from host class, medium class, the medium's level ceiling and
  the file's verdict;
- print_action(): the same for a print job, from host class, printer class
  (registered with a ceiling, or unregistered) and the document's verdict.

Defaults follow shared/DESIGN.md. A site overrides any cell through
agent.toml `[policy] actions`, with keys named exactly as the rule ids below
(e.g. "unclassified.personal.internal" = "block").
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from baomi.common.levels import Level

ACTIONS = ("allow", "audit", "notify", "block", "read_only", "deny")
DEVICE_ACTIONS = ("allow", "read_only", "deny")
FILE_ACTIONS = ("allow", "audit", "notify", "block")


@dataclass(frozen=True)
class Decision:
    action: str
    rule: str      # the id of the table cell that decided; overridable under that name
    reason: str    # one line for people


# -- device gate -------------------------------------------------------------
# rule id -> default action
DEVICE_DEFAULTS: dict[str, str] = {
    "classified.personal": "deny",
    "classified.registered": "allow",
    "unclassified.registered.classified": "deny",   # level ceiling >= confidential: cross-use
    "unclassified.registered.unclassified": "allow",
    "unclassified.personal": "allow",
    "registered.host_class_not_allowed": "deny",
    "registered.bad_signature": "",                  # treated as personal (see below)
}


def stricter(found: Decision, unread: Decision) -> Decision:
    """Of a partly read file's two cells, the one that does more: the cell of the level
    found in what was read, or the cell of why the rest could not be read. A marking
    found is never outweighed by a part that could not be read; on a tie the marking
    names the decision."""
    return found if FILE_ACTIONS.index(found.action) >= FILE_ACTIONS.index(unread.action) else unread


def from_unread_part(d: Decision) -> bool:
    """Whether a decision was made by an uninspectable cell (not by a level found)."""
    return d.rule.startswith("uninspectable.")


def _override(rule: str, default: str, overrides: Mapping[str, str], allowed: Iterable[str]) -> str:
    action = overrides.get(rule, default)
    if action not in allowed:
        raise ValueError(f"policy action for {rule!r} must be one of {', '.join(allowed)}, got {action!r}")
    return action


def device_action(
    host_class: str,
    medium_class: str,
    level_ceiling: Level | None = None,
    allowed_host_classes: Iterable[str] | None = None,
    overrides: Mapping[str, str] | None = None,
) -> Decision:
    """Decide the gate for a medium. `medium_class` is "registered" only for a record
    whose signature verified; anything else must be passed as "personal"."""
    overrides = overrides or {}
    if host_class not in ("classified", "unclassified"):
        raise ValueError(f"host class must be classified or unclassified, got {host_class!r}")
    if medium_class == "registered":
        if allowed_host_classes is not None and host_class not in set(allowed_host_classes):
            rule = "registered.host_class_not_allowed"
            return Decision(_override(rule, "deny", overrides, DEVICE_ACTIONS), rule,
                            f"registered medium not allowed on {host_class} hosts")
        if host_class == "classified":
            rule = "classified.registered"
            reason = "registered medium on a classified host"
        elif (level_ceiling or Level.PUBLIC) >= Level.CONFIDENTIAL:
            rule = "unclassified.registered.classified"
            reason = "classified medium on an unclassified host (cross-use, 交叉使用)"
        else:
            rule = "unclassified.registered.unclassified"
            reason = "registered unclassified medium on an unclassified host"
    elif medium_class == "personal":
        rule = f"{host_class}.personal"
        reason = ("personal medium on a classified host" if host_class == "classified"
                  else "personal medium on an unclassified host")
    else:
        raise ValueError(f"medium class must be registered or personal, got {medium_class!r}")
    return Decision(_override(rule, DEVICE_DEFAULTS[rule], overrides, DEVICE_ACTIONS), rule, reason)


# -- file writes -------------------------------------------------------------
# A file the scanner could not read is judged by why: encrypted content may hide
# anything; damaged or over-limit content was not read to the end; a file of a type
# that carries no text (audio, video, fonts, executables) has nothing to read.
UNINSPECTABLE_KINDS: tuple[str, ...] = ("encrypted", "damaged_or_over_limits", "unsupported")
UNINSPECTABLE_DEFAULTS: dict[str, dict[str, str]] = {
    "personal": {"encrypted": "block", "damaged_or_over_limits": "block", "unsupported": "audit"},
    "registered": {"encrypted": "audit", "damaged_or_over_limits": "audit", "unsupported": "audit"},
}
HOST_CLASSES: tuple[str, ...] = ("classified", "unclassified")
_UNINSPECTABLE_WHY = {"encrypted": "the file is encrypted",
                      "damaged_or_over_limits": "the file is damaged or over the scan limits",
                      "unsupported": "the file's type carries no text to inspect"}


def uninspectable_kind(reason: str | None) -> str:
    """The uninspectable cell for a verdict's reason; anything not named fails closed."""
    if reason == "encrypted":
        return "encrypted"
    if reason == "unsupported":
        return "unsupported"
    return "damaged_or_over_limits"   # corrupt, too_large, limit_exceeded, timeout, unreadable, …

def _personal_file_default(host_class: str, level: Level) -> str:
    if host_class == "classified":
        # a personal medium on a classified host should never be writable; if it is, nothing marked leaves
        return "audit" if level == Level.PUBLIC else "block"
    if level >= Level.CONFIDENTIAL:
        return "block"
    if level == Level.INTERNAL:
        return "notify"
    return "audit"


def file_action(
    host_class: str,
    medium_class: str,
    file_level: Level,
    level_ceiling: Level | None = None,
    inspectable: bool = True,
    overrides: Mapping[str, str] | None = None,
    reason: str | None = None,
) -> Decision:
    """Decide what happens to a file written to a medium; `reason` is the verdict's reason
    when it is not inspectable."""
    overrides = overrides or {}
    if not inspectable:
        kind = uninspectable_kind(reason)
        rule = f"uninspectable.{medium_class}.{kind}"
        # a site's setting for the whole medium class ("uninspectable.personal") covers
        # the three kinds unless one of them is set on its own
        parent = f"uninspectable.{medium_class}"
        default = overrides.get(parent, UNINSPECTABLE_DEFAULTS[medium_class][kind])
        unread = Decision(_override(rule, default, overrides, FILE_ACTIONS), rule, _UNINSPECTABLE_WHY[kind])
        if file_level == Level.PUBLIC:
            return unread
        # part of it was read and carries a marking: what was found is judged too
        return stricter(file_action(host_class, medium_class, file_level, level_ceiling, True, overrides), unread)
    if medium_class == "registered":
        ceiling = level_ceiling if level_ceiling is not None else Level.PUBLIC
        if file_level > ceiling:
            rule = f"{host_class}.registered.above_ceiling"
            return Decision(_override(rule, "block", overrides, FILE_ACTIONS), rule,
                            f"file level {file_level.id} above the medium's ceiling {ceiling.id}")
        rule = f"{host_class}.registered.within_ceiling"
        return Decision(_override(rule, "audit", overrides, FILE_ACTIONS), rule,
                        f"file level {file_level.id} within the medium's ceiling {ceiling.id}")
    if medium_class != "personal":
        raise ValueError(f"medium class must be registered or personal, got {medium_class!r}")
    rule = f"{host_class}.personal.{file_level.id}"
    default = _personal_file_default(host_class, file_level)
    reason = {"block": f"{file_level.id} file to a personal medium",
              "notify": "internal file to a personal medium",
              "audit": "file copied to a personal medium",
              "allow": "file copied to a personal medium"}[default]
    return Decision(_override(rule, default, overrides, FILE_ACTIONS), rule, reason)


# -- print jobs --------------------------------------------------------------
# A printer is "registered" (涉密打印机, with a level ceiling) or "unregistered". On a
# classified host only registered printers print; on an unclassified host marked
# documents (>= confidential) never go to an unregistered printer (004 第十五条).
PRINT_ACTIONS = FILE_ACTIONS
PRINT_UNINSPECTABLE_DEFAULTS: dict[str, str] = {"unregistered": "block", "registered": "audit"}
# levels whose printouts carry the traceable watermark unless agent.toml says otherwise
WATERMARK_DEFAULT_LEVELS: tuple[str, ...] = ("internal", "confidential", "secret", "top_secret")


def _unregistered_print_default(host_class: str, level: Level) -> str:
    if host_class == "classified":
        return "block"
    return "block" if level >= Level.CONFIDENTIAL else "audit"


def print_action(
    host_class: str,
    printer_class: str,
    level: Level,
    level_ceiling: Level | None = None,
    inspectable: bool = True,
    overrides: Mapping[str, str] | None = None,
) -> Decision:
    """Decide what happens to a print job. `printer_class` is "registered" (with its ceiling)
    or "unregistered"."""
    overrides = overrides or {}
    if printer_class not in ("registered", "unregistered"):
        raise ValueError(f"printer class must be registered or unregistered, got {printer_class!r}")
    if not inspectable:
        rule = f"uninspectable.printer.{printer_class}"
        unread = Decision(_override(rule, PRINT_UNINSPECTABLE_DEFAULTS[printer_class], overrides, PRINT_ACTIONS),
                          rule, "the document could not be inspected")
        if level == Level.PUBLIC:
            return unread
        return stricter(print_action(host_class, printer_class, level, level_ceiling, True, overrides), unread)
    if printer_class == "registered":
        ceiling = level_ceiling if level_ceiling is not None else Level.PUBLIC
        if level > ceiling:
            rule = f"{host_class}.printer.registered.above_ceiling"
            return Decision(_override(rule, "block", overrides, PRINT_ACTIONS), rule,
                            f"document level {level.id} above the printer's ceiling {ceiling.id}")
        rule = f"{host_class}.printer.registered.within_ceiling"
        return Decision(_override(rule, "audit", overrides, PRINT_ACTIONS), rule,
                        f"document level {level.id} within the printer's ceiling {ceiling.id}")
    rule = f"{host_class}.printer.unregistered.{level.id}"
    default = _unregistered_print_default(host_class, level)
    reason = ("only registered printers print on a classified host" if host_class == "classified"
              else f"{level.id} document to an unregistered printer")
    return Decision(_override(rule, default, overrides, PRINT_ACTIONS), rule, reason)


def print_cells() -> dict[str, str]:
    """Every print cell: rule id -> default action."""
    cells: dict[str, str] = {}
    for h in HOST_CLASSES:
        for level in Level:
            cells[f"{h}.printer.unregistered.{level.id}"] = _unregistered_print_default(h, level)
        cells[f"{h}.printer.registered.above_ceiling"] = "block"
        cells[f"{h}.printer.registered.within_ceiling"] = "audit"
    cells.update({f"uninspectable.printer.{c}": a for c, a in PRINT_UNINSPECTABLE_DEFAULTS.items()})
    return cells


def file_cells() -> dict[str, str]:
    """Every file cell: rule id -> default action (the docs and the console show these)."""
    cells: dict[str, str] = {}
    for h in HOST_CLASSES:
        for level in Level:
            cells[f"{h}.personal.{level.id}"] = _personal_file_default(h, level)
        cells[f"{h}.registered.above_ceiling"] = "block"
        cells[f"{h}.registered.within_ceiling"] = "audit"
    cells.update({f"uninspectable.{c}.{k}": a for c, kinds in UNINSPECTABLE_DEFAULTS.items()
                  for k, a in kinds.items()})
    return cells


def device_cells() -> dict[str, str]:
    return {k: v for k, v in DEVICE_DEFAULTS.items() if v}


def known_rules() -> set[str]:
    """Every rule id a site may set (the cells, and "uninspectable.<medium class>")."""
    return (set(file_cells()) | set(print_cells()) | set(device_cells())
            | {f"uninspectable.{c}" for c in UNINSPECTABLE_DEFAULTS})


def validate_overrides(overrides: Mapping[str, str]) -> str | None:
    """Check `[policy] actions` at load time; returns a message naming a bad key or value."""
    # print cells take the same actions; "uninspectable.<medium class>" sets all its kinds
    file_rules = set(file_cells()) | set(print_cells()) | {f"uninspectable.{c}" for c in UNINSPECTABLE_DEFAULTS}
    device_rules = set(device_cells())
    for key, action in overrides.items():
        if key in device_rules:
            if action not in DEVICE_ACTIONS:
                return f"{key}: device action must be one of {', '.join(DEVICE_ACTIONS)}, got {action!r}"
        elif key in file_rules:
            if action not in FILE_ACTIONS:
                return f"{key}: file action must be one of {', '.join(FILE_ACTIONS)}, got {action!r}"
        else:
            return f"{key}: unknown policy rule (see docs/policy.md for the rule ids)"
    return None
