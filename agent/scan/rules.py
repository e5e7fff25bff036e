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
The security administrator's signed central rules document (docs/rules.md
"Central rules", kept in state_dir by agent/central.py) adds one more rule file,
read after the local ones, and fingerprints by content hash.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Iterator

from baomi.common.levels import Level
from baomi.common.rulefile import KINDS, FingerprintSettings, Rule, RuleError, parse_file
from .matcher import KeywordMatcher
from .verdict import Evidence, TextChunk
from .normalize import leading_part, normalize, regions, squeeze_cjk, strip_markup

_REGION_ZONES = ("header", "footer")  # where a line is laid out in regions (tabs, Calc's left/centre/right)
_STARRED = re.compile(r"[★☆*]\s*\S")  # a ★ marking with its period: 机密★1年, not a bare 机密 or 绝密★
MAX_EVIDENCE = 64  # per file: enough to show where, without flooding an event


__all__ = ["KINDS", "FingerprintSettings", "Rule", "RuleError", "RuleSet", "parse_file", "central_rules",
           "rules_stamp", "MAX_EVIDENCE"]   # the parser lives in baomi.common.rulefile, shared with the collector
log = logging.getLogger(__name__)
CENTRAL_STORE = "central-rules.json"   # agent/central.py RULES_STORE


def central_path(config: Any) -> Path:
    return Path(config.state_dir) / CENTRAL_STORE


def rules_stamp(config: Any) -> tuple[int, int, int] | None:
    """What identifies the kept central rules document on disk (None: there is none);
    a scanner whose stamp differs loads its rules again."""
    try:
        st = os.stat(central_path(config))
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def central_rules(config: Any) -> dict[str, Any] | None:
    """The kept central rules document if it verifies against `[central] public_key`
    (agent/central.py stores only what it accepted; an altered copy is ignored here and
    reported by the daemon at start as policy.forged)."""
    key_path = getattr(getattr(config, "central", None), "public_key", None)
    path = central_path(config)
    if key_path is None or not path.exists():
        return None
    from baomi.common import central, rulesdoc
    try:
        from cryptography.hazmat.primitives import serialization
        key = serialization.load_pem_public_key(Path(key_path).read_bytes())
        return rulesdoc.verify(json.loads(path.read_text(encoding="utf-8")), key)  # type: ignore[arg-type]
    except (OSError, ValueError, TypeError, central.Forged) as exc:
        log.warning("central rules in %s not used: %s", path, exc)
        return None


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def central_source(doc: dict[str, Any]) -> str:
    """The file name rule sources and errors name for the central rule file."""
    return f"central-rules v{doc['version']}"


class RuleSet:
    def __init__(self, rules: Iterable[Rule], fingerprint: FingerprintSettings | None = None,
                 fingerprint_db: Path | None = None, central_fingerprints: Iterable[dict[str, Any]] = ()):
        self.rules = list(rules)
        # registered documents of the central rules document: sha256 -> (name, level)
        central_fingerprints = list(central_fingerprints)
        self.central_fingerprints = {f["sha256"]: (f["name"], Level.parse(f["level"])) for f in central_fingerprints}
        # and those with text fingerprints (`baomi-agent fingerprint export`): hash -> entries holding it
        self._central_text = [(f["name"], Level.parse(f["level"]), f["sha256"], int(f["chars"]), len(f["hashes"]))
                              for f in central_fingerprints if f.get("hashes")]
        self._central_hashes: dict[int, list[int]] = {}
        for i, f in enumerate(f for f in central_fingerprints if f.get("hashes")):
            for h in f["hashes"]:
                self._central_hashes.setdefault(h, []).append(i)
        self.central_version = 0
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
        # what bytes of no known format are searched for (extractors/raw.py)
        self.raw_literals = tuple(sorted({x for r in self._markings if "raw" in r.zones for x in r.requires}))

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_fp_index"] = None  # an open database does not cross processes
        return state

    @classmethod
    def load(cls, dirs: list[Path] | None = None, fingerprint_db: Path | None = None,
             central: dict[str, Any] | None = None) -> "RuleSet":
        """Shipped rules, then every *.toml of each folder in order (a missing folder is
        skipped), then the central rules document's rule file; a later rule with the same
        id replaces the earlier one (a central dictionary replaces a local one of its id)."""
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
        if central is not None:
            files.append((central_source(central), central["rules"]))
        for name, text in files:
            rules, fp_part = parse_file(name, text)
            fp.update(fp_part)
            for r in rules:
                if isinstance(r, str):
                    by_id.pop(r, None)
                else:
                    by_id.pop(r.id, None)  # re-insert: later files decide the order too
                    by_id[r.id] = r
        out = cls(by_id.values(), FingerprintSettings(**fp), Path(fingerprint_db) if fingerprint_db else None,
                  central["fingerprints"] if central is not None else ())
        out.central_version = int(central["version"]) if central is not None else 0
        return out

    @classmethod
    def for_config(cls, config: Any) -> "RuleSet":
        """The rules an agent configuration names: the folders of [scan] rule_dirs and
        the fingerprint database (fingerprint.default_db). Every scanner's rules come
        from here: the daemon's, `baomi-agent scan`'s and a Scanner given none."""
        from .fingerprint import default_db
        return cls.load(config.scan.rule_dirs, default_db(config), central_rules(config))

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
        if sha256 and sha256 in self.central_fingerprints:
            name, level = self.central_fingerprints[sha256]
            found.append(Evidence("fingerprint.exact", "body", level, {"fingerprint": name}, sha256))
            return found
        if self._central_text:
            found.extend(self._eval_central_text(chunks))
        if self.fingerprint_db is not None:
            found.extend(self._eval_fingerprints(chunks, sha256))
        return found

    def _eval_central_text(self, chunks: list[TextChunk]) -> list[Evidence]:
        """Excerpts of the central rules' registered documents (as FingerprintIndex.match)."""
        from .fingerprint import fingerprints
        counts: dict[int, int] = {}
        for h in fingerprints("\n".join(c.text for c in chunks if c.zone != "metadata")):
            for i in self._central_hashes.get(h, ()):
                counts[i] = counts.get(i, 0) + 1
        out = []
        for i, n in counts.items():
            name, level, sha, chars, total = self._central_text[i]
            share = n / total
            if share >= self.fingerprint.threshold and chars * share >= self.fingerprint.min_chars:
                out.append(Evidence("fingerprint.partial", "body", level, {"fingerprint": name, "share": round(share, 2)},
                                    sha))
        return sorted(out, key=lambda e: -e.level)

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
            raw = chunk.zone == "raw"
            if (n > 2 * rule.max_chars + 8 and not raw) or chunk.zone not in rule.zones:
                continue
            if rule.requires and not any(r in text for r in rule.requires):
                continue
            if rule.starts_with:
                head = text.lstrip() if head is None else head
                if not head.startswith(rule.starts_with):
                    continue
            if norm is None:
                norm = squeeze_cjk(strip_markup(normalize(text)))
            if raw:  # a text run in binary data has no line layout: the marking is searched within it
                m = rule.pattern.search(norm)  # type: ignore[union-attr]
                if m:
                    add(rule, chunk, rule.level_of(m.groupdict().get("level")), m.group(0))
            elif len(norm) <= rule.max_chars:
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
