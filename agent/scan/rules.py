"""Rules as data: TOML files in the baomi.rules package, then /etc/baomi/rules.d
(or the folders given). The format is documented in docs/rules.md.

Kinds:
  marking   a regular expression that must match a whole chunk (a line, a
            paragraph, a cell) after normalisation — a marking stands on its
            own, never inside a sentence — in the zones the rule names;
  label     a metadata property (key pattern) whose value names a level;
  keywords  a dictionary of words, found anywhere in the named zones by one
            Aho-Corasick automaton for all dictionaries.
Fingerprints of registered documents are kept in an SQLite file
(agent/scan/fingerprint.py); `[fingerprint]` in a rule file tunes the match.
"""
from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Iterator

from baomi.common.levels import Level
from .matcher import KeywordMatcher
from .verdict import ZONES, Evidence, TextChunk
from .normalize import leading_part, normalize, regions, squeeze_cjk, strip_markup

KINDS = ("marking", "label", "keywords")
_REGION_ZONES = ("header", "footer")  # where a line is laid out in regions (tabs, Calc's left/centre/right)
_STARRED = re.compile(r"[★☆*]\s*\S")  # a ★ marking with its period: 机密★1年, not a bare 机密 or 绝密★
MAX_EVIDENCE = 64  # per file: enough to show where, without flooding an event


class RuleError(ValueError):
    """A rule file that cannot be used: names the file, the rule and the key."""

    def __init__(self, file: str | Path, message: str, rule: str | None = None, key: str | None = None,
                 line: int | None = None):
        where = f"{file}:{line}" if line else str(file)
        what = "".join([f" rule {rule!r}" if rule else "", f" key {key!r}" if key else ""])
        super().__init__(f"{where}:{what}: {message}" if what else f"{where}: {message}")


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
    for k, v in fp.items():
        if k == "threshold" and not (isinstance(v, (int, float)) and 0 < v <= 1):
            raise RuleError(name, "must be a number in (0, 1]", key="fingerprint.threshold")
        if k == "min_chars" and not (isinstance(v, int) and v >= 1):
            raise RuleError(name, "must be a positive integer", key="fingerprint.min_chars")
        if k not in ("threshold", "min_chars"):
            raise RuleError(name, "unknown key", key=f"fingerprint.{k}")
    return [_parse_rule(r, name) for r in rules], fp


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class RuleSet:
    def __init__(self, rules: Iterable[Rule], fingerprint: FingerprintSettings | None = None,
                 fingerprint_db: Path | None = None):
        self.rules = list(rules)
        self.fingerprint = fingerprint or FingerprintSettings()
        self.fingerprint_db = fingerprint_db
        self._markings = [r for r in self.rules if r.kind == "marking"]
        self._labels = [r for r in self.rules if r.kind == "label"]
        self._keyword_rules = {r.id: r for r in self.rules if r.kind == "keywords"}
        self._keywords = KeywordMatcher({rid: list(r.words) for rid, r in self._keyword_rules.items()})
        self._fp_index: Any = None
        # one C-speed search tells whether a chunk can hold any marking at all: the
        # union of every rule's `requires`, usable when each rule has one (or starts_with)
        self._prefix_rules = [r for r in self._markings if r.starts_with and not r.requires]
        gated = [r for r in self._markings if r not in self._prefix_rules]
        self._gate = (re.compile("|".join(re.escape(x) for x in sorted({x for r in gated for x in r.requires}, key=len, reverse=True)))
                      if gated and all(r.requires for r in gated) else None)
        # the literals that place a line of a block among the candidates: every required
        # literal and every prefix (str.find runs at C speed; a regex alternation does not)
        self._block_literals = sorted({x for r in gated for x in r.requires}
                                      | {p for r in self._prefix_rules for p in r.starts_with})

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_fp_index"] = None  # an open database does not cross processes
        return state

    @classmethod
    def load(cls, dirs: list[Path] | None = None, fingerprint_db: Path | None = None) -> "RuleSet":
        """Shipped rules, then every *.toml of each folder in order (a missing folder is
        skipped); a later rule with the same id replaces the earlier one."""
        by_id: dict[str, Rule] = {}
        fp: dict[str, Any] = {}
        files: list[tuple[str, str]] = []
        for res in sorted(resources.files("baomi.rules").iterdir(), key=lambda p: p.name):
            if res.name.endswith(".toml"):
                files.append((f"baomi.rules/{res.name}", res.read_text(encoding="utf-8")))
        for d in dirs or []:
            d = Path(d)
            if not d.is_dir():
                if d.exists():
                    raise RuleError(d, "is not a folder")
                continue
            for f in sorted(d.glob("*.toml")):
                try:
                    files.append((str(f), f.read_text(encoding="utf-8")))
                except (OSError, UnicodeDecodeError) as exc:
                    raise RuleError(f, f"cannot read: {exc}") from None
        for name, text in files:
            rules, fp_part = parse_file(name, text)
            fp.update(fp_part)
            for r in rules:
                if isinstance(r, str):
                    by_id.pop(r, None)
                else:
                    by_id.pop(r.id, None)  # re-insert: later files decide the order too
                    by_id[r.id] = r
        return cls(by_id.values(), FingerprintSettings(**fp), Path(fingerprint_db) if fingerprint_db else None)

    @classmethod
    def for_config(cls, config: Any) -> "RuleSet":
        """The rules an agent configuration names: the folders of [scan] rule_dirs and
        the fingerprint database (fingerprint.default_db). Every scanner's rules come
        from here: the daemon's, `baomi-agent scan`'s and a Scanner given none."""
        from .fingerprint import default_db
        return cls.load(config.scan.rule_dirs, default_db(config))

    # -- evaluation -------------------------------------------------------
    def evaluate(self, chunks: list[TextChunk], sha256: str | None = None) -> list[Evidence]:
        found: list[Evidence] = []
        seen: set[tuple] = set()

        def add(rule: Rule, chunk: TextChunk, level: Level | None, matched: str) -> None:
            if level is None or len(found) >= MAX_EVIDENCE:
                return
            key = (rule.id, chunk.zone, tuple(sorted((k, str(v)) for k, v in chunk.location.items())))
            if key in seen:
                return
            seen.add(key)
            found.append(Evidence(rule.id, chunk.zone, level, dict(chunk.location), _digest(matched)))

        def starred(rule: Rule, chunk: TextChunk, level: Level | None, matched: str) -> None:
            if _STARRED.search(matched):
                add(rule, chunk, level, matched)

        for chunk in chunks:
            if chunk.multiline:
                for line in self._candidate_lines(chunk):
                    self._eval_chunk(line, add)
            else:
                self._eval_chunk(chunk, add)
                if chunk.zone in _REGION_ZONES:
                    for part in regions(chunk.text):  # a marking in one region of a header line
                        self._eval_chunk(TextChunk(chunk.zone, part, chunk.location), add)
                lead = leading_part(chunk.text) if chunk.zone == "first_page_top" else None
                if lead:  # `机密★1年 装备配置清单`: only a full ★ marking counts as the lead of a line
                    self._eval_chunk(TextChunk(chunk.zone, lead, chunk.location), starred)
        if self.fingerprint_db is not None:
            found.extend(self._eval_fingerprints(chunks, sha256))
        return found

    def _eval_chunk(self, chunk: TextChunk, add: Any) -> None:
        text = chunk.text
        if not text or text.isspace():
            return
        if chunk.zone == "metadata":
            self._eval_label(chunk, add)
        # cheap checks on the raw text first: most chunks are prose, too long to be a marking
        n, norm, head = len(text), None, None
        candidates = self._markings
        if self._gate is not None and self._gate.search(text) is None:
            candidates = self._prefix_rules
        for rule in candidates:
            if n > 2 * rule.max_chars + 8 or chunk.zone not in rule.zones:
                continue
            if rule.requires and not any(r in text for r in rule.requires):
                continue
            if rule.starts_with:
                head = text.lstrip() if head is None else head
                if not head.startswith(rule.starts_with):
                    continue
            if norm is None:
                norm = squeeze_cjk(strip_markup(normalize(text)))
            if len(norm) <= rule.max_chars:
                m = rule.pattern.fullmatch(norm)  # type: ignore[union-attr]
                if m:
                    add(rule, chunk, rule.level_of(m.groupdict().get("level")), m.group(0))
        if self._keywords:
            for rid, word in self._keywords.find(normalize(text)):
                rule = self._keyword_rules[rid]
                if chunk.zone in rule.zones:
                    add(rule, chunk, rule.level, word)

    def _candidate_lines(self, block: TextChunk) -> Iterator[TextChunk]:
        """The lines of a multi-line chunk that any rule could match: one C-speed pass
        over the block finds them (a required literal, a rule's prefix at a line start,
        a keyword); the other lines cannot match and are never split out."""
        text = block.text
        if self._gate is None or (self._keywords and any(True for _ in self._keywords.find(normalize(text)))):
            yield from block.lines()  # no cheap test applies: every line
            return
        starts: set[int] = set()
        for lit in self._block_literals:
            pos = text.find(lit)
            while pos >= 0:
                start = text.rfind("\n", 0, pos) + 1
                starts.add(start)
                end = text.find("\n", pos)
                if end < 0:
                    break
                pos = text.find(lit, end)  # the rest of this line is a candidate already
        first = int(block.location.get("line", 1))
        line_no, counted = first, 0
        for start in sorted(starts):
            line_no += text.count("\n", counted, start)
            counted = start
            end = text.find("\n", start)
            line = text[start:None if end < 0 else end].strip()
            if line:
                yield TextChunk(block.zone, line, {**block.location, "line": line_no})

    def _eval_label(self, chunk: TextChunk, add: Any) -> None:
        key = str(chunk.location.get("key", ""))
        for rule in self._labels:
            if "metadata" in rule.zones and rule.pattern.fullmatch(key):  # type: ignore[union-attr]
                value = normalize(chunk.text)
                add(rule, chunk, rule.level_of(value) if rule.levels else rule.level, value)

    def _eval_fingerprints(self, chunks: list[TextChunk], sha256: str | None) -> list[Evidence]:
        from .fingerprint import FingerprintIndex
        if self._fp_index is None:
            self._fp_index = FingerprintIndex(self.fingerprint_db)  # type: ignore[arg-type]
        body = [c.text for c in chunks if c.zone != "metadata"]
        return self._fp_index.match(body, sha256, self.fingerprint.threshold, self.fingerprint.min_chars)

    @staticmethod
    def level(evidence: list[Evidence]) -> Level:
        """The file's level: the highest marking found in the content; metadata
        labels decide only when the content carries no marking (a body marking wins)."""
        content = [e.level for e in evidence if e.zone != "metadata"]
        if content:
            return max(content)
        return max((e.level for e in evidence), default=Level.PUBLIC)
