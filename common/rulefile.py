"""Rule files (docs/rules.md): parsing and validating the TOML the scanner loads from
the shipped rules and `[scan] rule_dirs`, and the security administrator's central
rules document. Pure: no I/O but reading a named file. The collector validates
a site rule file with this same code before it signs it.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from baomi.common.levels import Level
from baomi.common.normalize import normalize

# raw: text runs found in the bytes of a file no reader understands (docs/rules.md#zones);
# a rule is searched there only when it lists it
ZONES: tuple[str, ...] = ("metadata", "first_page_top", "header", "footer", "body", "raw")
KINDS = ("marking", "label", "keywords")


class RuleError(ValueError):
    """A rule file that cannot be used: names the file, the rule, the key and, where it
    can be found, the line."""

    def __init__(self, file: str | Path, message: str, rule: str | None = None, key: str | None = None,
                 line: int | None = None):
        self.file, self.message, self.rule, self.key, self.line = str(file), message, rule, key, line
        where = f"{file}:{line}" if line else str(file)
        what = "".join([f" rule {rule!r}" if rule else "", f" key {key!r}" if key else ""])
        super().__init__(f"{where}:{what}: {message}" if what else f"{where}: {message}")

    def at(self, line: int | None) -> "RuleError":
        return self if self.line or not line else RuleError(self.file, self.message, self.rule, self.key, line)


@dataclass
class Rule:
    id: str
    kind: str
    zones: tuple[str, ...]
    description: str = ""
    level: Level | None = None             # fixed level, or
    levels: dict[str, Level] = field(default_factory=dict)  # word in the match (group "level") → level
    pattern: re.Pattern[str] | None = None  # marking: whole chunk; label: the property key
    max_chars: int = 80                     # marking: longer chunks are prose, not a marking
    words: tuple[str, ...] = ()             # keywords
    starts_with: tuple[str, ...] = ()       # marking: the raw chunk must start with one of these (cheap pre-check)
    requires: tuple[str, ...] = ()          # marking: one of these must occur in the raw chunk (cheap pre-check)
    source: str = ""

    def level_of(self, word: str | None) -> Level | None:
        if word is not None and self.levels:
            key = re.sub(r"\s+", "", normalize(word)).casefold()
            return self.levels.get(key, self.level)
        return self.level


@dataclass
class FingerprintSettings:
    threshold: float = 0.30   # share of a registered document's fingerprints found
    min_chars: int = 300      # and at least this much of its text


def _err(file: Path | str, msg: str, rule: str | None = None, key: str | None = None) -> RuleError:
    return RuleError(file, msg, rule, key)


def _parse_level(value: Any, file: str, rid: str, key: str) -> Level:
    try:
        return Level.parse(value)
    except ValueError as exc:
        raise _err(file, str(exc), rid, key) from None


def _strings(raw: dict, key: str, file: str, rid: str) -> tuple[str, ...]:
    """raw[key]: a list of non-empty strings (none if absent)."""
    value = raw.get(key, [])
    if not isinstance(value, list) or any(not isinstance(x, str) or not x for x in value):
        raise _err(file, "must be a list of non-empty strings", rid, key)
    return tuple(value)


def _parse_rule(raw: Any, file: str) -> Rule | str:
    """A Rule, or the id of a rule to disable (`enabled = false`)."""
    if not isinstance(raw, dict):
        raise _err(file, "each [[rule]] must be a table")
    rid = raw.get("id")
    if not isinstance(rid, str) or not re.fullmatch(r"[A-Za-z0-9_.:-]+", rid):
        raise _err(file, "needs an id of letters, digits, and . _ : -", key="id")
    if raw.get("enabled", True) is False:
        return rid
    known = {"id", "kind", "zones", "description", "level", "levels", "pattern", "key", "max_chars",
             "words", "enabled", "values", "starts_with", "requires"}
    for k in raw:
        if k not in known:
            raise _err(file, f"unknown key (expected one of {', '.join(sorted(known))})", rid, k)
    kind = raw.get("kind")
    if kind not in KINDS:
        raise _err(file, f"kind must be one of {', '.join(KINDS)}", rid, "kind")
    default_zones = ("metadata",) if kind == "label" else ("first_page_top", "header", "footer", "body")
    zones = raw.get("zones", list(default_zones))
    if not isinstance(zones, list) or not zones or any(z not in ZONES for z in zones):
        raise _err(file, f"zones must be a list from {', '.join(ZONES)}", rid, "zones")
    rule = Rule(id=rid, kind=kind, zones=tuple(zones), description=str(raw.get("description", "")), source=file)
    if "level" in raw:
        rule.level = _parse_level(raw["level"], file, rid, "level")
    levels = raw.get("levels", raw.get("values", {}))
    if not isinstance(levels, dict):
        raise _err(file, "must be a table of word = level", rid, "levels")
    for word, lvl in levels.items():
        rule.levels[re.sub(r"\s+", "", normalize(word)).casefold()] = _parse_level(lvl, file, rid, f"levels.{word}")
    if rule.level is None and not rule.levels:
        raise _err(file, "needs `level` or a `levels` table", rid, "level")
    if kind in ("marking", "label"):
        src = raw.get("key" if kind == "label" else "pattern")
        name = "key" if kind == "label" else "pattern"
        if not isinstance(src, str) or not src:
            raise _err(file, "needs a regular expression", rid, name)
        try:
            rule.pattern = re.compile(src)
        except re.error as exc:
            raise _err(file, f"bad regular expression: {exc}", rid, name) from None
        if kind == "marking" and rule.levels and "level" not in rule.pattern.groupindex:
            raise _err(file, "a `levels` table needs a (?P<level>...) group in the pattern", rid, "pattern")
    if kind == "marking":
        mc = raw.get("max_chars", 80)
        if not isinstance(mc, int) or mc < 1:
            raise _err(file, "must be a positive integer", rid, "max_chars")
        rule.max_chars = mc
        rule.starts_with = _strings(raw, "starts_with", file, rid)
        rule.requires = _strings(raw, "requires", file, rid)
    if "raw" in rule.zones and not (kind == "marking" and rule.requires):
        # raw bytes are searched only around a rule's literals: a search for every pattern
        # over a film or a program would cost seconds and find noise
        raise _err(file, "the raw zone is for marking rules with `requires`", rid, "zones")
    if kind == "keywords":
        words = raw.get("words", [])
        if not isinstance(words, list) or any(not isinstance(w, str) or not normalize(w) for w in words):
            raise _err(file, "must be a list of non-empty strings", rid, "words")
        if rule.level is None:
            raise _err(file, "keywords need a fixed `level`", rid, "level")
        rule.words = tuple(normalize(w) for w in words)
    return rule


def parse_file(path: Path | str, text: str | None = None) -> tuple[list[Rule | str], dict[str, Any]]:
    """Rules (or ids to disable) and the [fingerprint] table of one file; RuleError on any problem."""
    name = str(path)
    if text is None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise RuleError(name, f"cannot read: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise RuleError(name, f"TOML syntax error: {exc}", line=int(m.group(1)) if m else None) from None
    for k in data:
        if k not in ("rule", "fingerprint"):
            raise RuleError(name, f"unknown table {k!r} (expected [[rule]] or [fingerprint])")
    rules = data.get("rule", [])
    if not isinstance(rules, list):
        raise RuleError(name, "`rule` must be an array of tables: [[rule]]")
    fp = data.get("fingerprint", {})
    if not isinstance(fp, dict):
        raise RuleError(name, "`fingerprint` must be a table: [fingerprint]")
    fp_line = _line_of(text, r"\[\s*fingerprint\s*\]")
    for k, v in fp.items():
        if k == "threshold" and not (isinstance(v, (int, float)) and 0 < v <= 1):
            raise RuleError(name, "must be a number in (0, 1]", key="fingerprint.threshold", line=fp_line)
        if k == "min_chars" and not (isinstance(v, int) and v >= 1):
            raise RuleError(name, "must be a positive integer", key="fingerprint.min_chars", line=fp_line)
        if k not in ("threshold", "min_chars"):
            raise RuleError(name, "unknown key", key=f"fingerprint.{k}", line=fp_line)
    out: list[Rule | str] = []
    headers = _rule_headers(text)
    for i, raw in enumerate(rules):
        try:
            out.append(_parse_rule(raw, name))
        except RuleError as exc:
            raise exc.at(_line_in_rule(text, headers, i, exc.key)) from None
    return out, fp


def _line_of(text: str, pattern: str) -> int | None:
    m = re.search(rf"(?m)^[ \t]*{pattern}", text)
    return text.count("\n", 0, m.start()) + 1 if m else None


def _rule_headers(text: str) -> list[int]:
    """The line (0-based) of each `[[rule]]` header, in order."""
    return [i for i, line in enumerate(text.splitlines()) if re.match(r"\s*\[\[\s*rule\s*\]\]", line)]


def _line_in_rule(text: str, headers: list[int], index: int, key: str | None) -> int | None:
    """The 1-based line of `key` in the index-th [[rule]] (the rule's header line when the
    key is not written there); None when the rules are not written as [[rule]] tables."""
    if index >= len(headers):
        return None
    lines = text.splitlines()
    end = headers[index + 1] if index + 1 < len(headers) else len(lines)
    if key:
        first = key.split(".")[0]
        for n in range(headers[index] + 1, end):
            if re.match(rf"\s*[\"']?{re.escape(first)}[\"']?\s*=", lines[n]):
                return n + 1
        if "." in key:   # levels.机密: the word's own line in a [rule.levels] table
            word = key.split(".", 1)[1]
            for n in range(headers[index] + 1, end):
                if word in lines[n]:
                    return n + 1
    return headers[index] + 1


def validate(text: str, name: str = "site.toml") -> dict[str, int]:
    """The rules of one site rule file by kind (and how many disable a rule), or RuleError
    naming the line and the reason: what the console checks before it signs the file."""
    rules, _fp = parse_file(name, text)
    counts: dict[str, int] = {k: 0 for k in KINDS}
    counts["disabled"] = 0
    for r in rules:
        if isinstance(r, str):
            counts["disabled"] += 1
        else:
            counts[r.kind] += 1
    return counts
