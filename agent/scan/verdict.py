"""Data passed between extractors, rules and callers of the scanner.

extractors  ->  TextChunk(zone, text, location)   (text never leaves the scanner)
rules       ->  Evidence(rule, zone, location, level, hash)
scanner     ->  Verdict(path, level, inspectable, reason, evidence, type, size, sha256)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Literal

from baomi.common.levels import Level
from baomi.common.rulefile import ZONES  # one list for the scanner and the rule files

__all__ = ["ZONES", "Evidence", "Reason", "TextChunk", "Verdict", "Zone"]
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
