"""Data passed between extractors, rules and callers of the scanner.

extractors  ->  TextChunk(zone, text, location)   (text never leaves the scanner)
rules       ->  Evidence(rule, zone, location, level, hash)
scanner     ->  Verdict(path, level, inspectable, reason, evidence, type, size, sha256)
"""
from __future__ import annotations

import re
import typing
from dataclasses import dataclass, field
from typing import Any, Iterator, Literal

from baomi.common.levels import Level
from baomi.common.rulefile import ZONES  # one list for the scanner and the rule files

__all__ = ["ZONES", "Evidence", "Reason", "TextChunk", "Verdict", "VerdictError", "Zone"]
Zone = Literal["metadata", "first_page_top", "header", "footer", "body", "raw"]
Reason = Literal["encrypted", "corrupt", "too_large", "limit_exceeded", "timeout", "unsupported", "unreadable", "vanished"]


@dataclass
class TextChunk:
    """A piece of extracted text in a zone. `location` is e.g. {"page": 1, "line": 3},
    {"sheet": "Sheet1", "cell": "A1"}, {"slide": 2}, {"member": "a/b.docx"}, {"key": "MSIP_Label_..."}."""
    zone: str
    text: str
    location: dict[str, Any] = field(default_factory=dict)
    # True for a block of "\n"-separated lines (the bulk of a plain-text file) whose
    # location names its first line: rules still see each line on its own, but the
    # scanner does not pay for an object per line of a long text
    multiline: bool = False

    def lines(self) -> Iterator["TextChunk"]:
        """The chunk as single lines (itself when it is one)."""
        if not self.multiline:
            yield self
            return
        first = int(self.location.get("line", 1))
        for i, line in enumerate(self.text.split("\n")):
            line = line.strip()
            if line:
                yield TextChunk(self.zone, line, {**self.location, "line": first + i})


@dataclass
class Evidence:
    rule: str
    zone: str
    level: Level
    location: dict[str, Any]
    hash: str  # sha256 of the matched text, never the text itself

    def to_json(self) -> dict[str, Any]:
        return {"rule": self.rule, "zone": self.zone, "level": self.level.id,
                "location": self.location, "hash": self.hash}


@dataclass
class Verdict:
    path: str
    level: Level = Level.PUBLIC
    inspectable: bool = True
    reason: str | None = None
    detail: str | None = None  # a human-readable explanation of `reason`
    evidence: list[Evidence] = field(default_factory=list)
    type: str = "application/octet-stream"
    size: int = 0
    sha256: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": self.path, "level": self.level.id, "inspectable": self.inspectable,
            "evidence": [e.to_json() for e in self.evidence], "type": self.type,
            "size": self.size, "sha256": self.sha256,
        }
        if not self.inspectable:
            out["reason"] = self.reason
            if self.detail:
                out["detail"] = self.detail
        return out

    @classmethod
    def from_worker(cls, obj: Any, path: str) -> "Verdict":
        """The Verdict a scan worker sent as JSON (to_json), checked field by field: the
        worker parses hostile documents and is not trusted with more than a verdict.
        path: the file the agent asked about (the worker's own word for it is ignored).
        Raises VerdictError naming what was wrong."""
        o = _fields(obj, "verdict", {"path", "level", "inspectable", "evidence", "type", "size", "sha256",
                                     "reason", "detail"})
        v = cls(path=path, level=_level(o.get("level")), inspectable=_typed(o, "inspectable", bool),
                type=_text(o, "type", 200), size=_typed(o, "size", int), sha256=o.get("sha256"))
        if v.sha256 is not None and not (isinstance(v.sha256, str) and _SHA256.fullmatch(v.sha256)):
            raise VerdictError("sha256 is not a hex digest")
        if v.size < 0:
            raise VerdictError("size is negative")
        if not v.inspectable:
            v.reason = o.get("reason")
            if v.reason is not None and v.reason not in _REASONS:
                raise VerdictError(f"reason {str(v.reason)[:40]!r} is not one of {', '.join(_REASONS)}")
            if o.get("detail") is not None:
                v.detail = _typed(o, "detail", str)[:1000]   # words for people: a long one is cut, not refused
        evidence = o.get("evidence")
        if not isinstance(evidence, list) or len(evidence) > MAX_EVIDENCE:
            raise VerdictError(f"evidence is not a list of at most {MAX_EVIDENCE}")
        v.evidence = [_evidence(e) for e in evidence]
        return v


class VerdictError(ValueError):
    """A scan worker's answer that is not a well-formed verdict."""


MAX_EVIDENCE = 10_000
_REASONS = typing.get_args(Reason)
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _fields(obj: Any, what: str, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(obj, dict) or not set(obj) <= allowed:
        raise VerdictError(f"{what} is not an object with the fields {', '.join(sorted(allowed))}")
    return obj


def _typed(o: dict[str, Any], key: str, kind: type) -> Any:
    value = o.get(key)
    if type(value) is not kind:          # bool is an int: type(), not isinstance()
        raise VerdictError(f"{key} is not a {kind.__name__}")
    return value


def _text(o: dict[str, Any], key: str, most: int) -> str:
    """o[key], a string of at most `most` characters."""
    value = _typed(o, key, str)
    if len(value) > most:
        raise VerdictError(f"{key} is longer than {most} characters")
    return value


def _level(value: Any) -> Level:
    try:
        if isinstance(value, str):
            return Level.parse(value)
    except ValueError:
        pass
    raise VerdictError(f"level {str(value)[:40]!r} is not a level")


def _evidence(obj: Any) -> Evidence:
    e = _fields(obj, "evidence", {"rule", "zone", "level", "location", "hash"})
    zone = _text(e, "zone", 40)
    if zone not in ZONES:
        raise VerdictError(f"zone {zone[:40]!r} is not a zone")
    location = e.get("location")
    if not isinstance(location, dict) or len(location) > 20 or not all(
            isinstance(k, str) and len(k) <= 100 and (value is None or type(value) in (str, int, float, bool))
            and (not isinstance(value, str) or len(value) <= 4096) for k, value in location.items()):
        raise VerdictError("location is not an object of at most 20 short scalar fields")
    digest = e.get("hash")
    if not (isinstance(digest, str) and _SHA256.fullmatch(digest)):
        raise VerdictError("evidence hash is not a hex digest")
    return Evidence(rule=_text(e, "rule", 200), zone=zone, level=_level(e.get("level")), location=location,
                    hash=digest)
