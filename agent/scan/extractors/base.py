"""What every extractor shares: the context it writes into (Ctx), the budget of
one file (Budget), the exception that stops it (Incomplete) and the zoning of
a first page (TopLines). An extractor reaches nested content (archive members,
embedded parts) through ctx.descend, never through the dispatcher's module, so
no extractor imports baomi.agent.scan.extract."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ..limits import Limits
from ..verdict import TextChunk

FIRST_LINES = 8  # GB/T 9704 puts the marking in the first lines of the first page


class Incomplete(Exception):
    """Raised by an extractor that cannot go on: the reason and a detail for people."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


@dataclass
class Budget:
    """Shared by every member of one file, however deeply nested."""
    limits: Limits
    unpacked: int = 0
    members: int = 0
    ocr_pages: int = 0
    ocr_seconds: float = 0.0

    def take(self, size: int, what: str) -> None:
        self.unpacked += size
        if self.unpacked > self.limits.max_archive_bytes:
            raise Incomplete("limit_exceeded", f"{what}: more than {self.limits.max_archive_bytes} bytes unpacked")


@dataclass
class Ctx:
    """What an extractor needs: limits, where it is (member path, depth), where to
    put text, and the dispatcher that extracts nested content (given to the root
    context by extract.py, inherited by every child)."""
    budget: Budget
    dispatch: Callable[[bytes, "Ctx"], Any]
    chunks: list[TextChunk] = field(default_factory=list)
    member: str | None = None
    depth: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)  # (reason, detail) of parts not inspected
    # pictures inside a document (name, loader), OCR'd afterwards only if its text carries no marking
    pictures: list[tuple[str, Callable[[], bytes]]] = field(default_factory=list)
    # the literals searched for in bytes of no known format (RuleSet.raw_literals; extractors/raw.py)
    raw: tuple[str, ...] = ()

    @property
    def limits(self) -> Limits:
        return self.budget.limits

    def add(self, zone: str, text: str, **location: Any) -> None:
        text = text.strip()
        if text:
            if self.member:
                location["member"] = self.member
            self.chunks.append(TextChunk(zone, text, location))

    def problem(self, reason: str, detail: str) -> None:
        self.problems.append((reason, detail))

    def picture(self, name: str, load: Callable[[], bytes]) -> None:
        """Note a picture of this document for OCR later (extract.ocr_pictures)."""
        full = f"{self.member}/{name}" if self.member else name
        self.pictures.append((full, load))

    def where(self) -> str:
        return self.member or "file"

    def descend(self, data: bytes, name: str) -> None:
        """Extract an archive member (or embedded part) into this context's chunks."""
        if self.depth + 1 > self.limits.max_depth:
            self.problem("limit_exceeded", f"{name}: nested deeper than {self.limits.max_depth}")
            return
        self.budget.members += 1
        if self.budget.members > self.limits.max_members:
            raise Incomplete("limit_exceeded", f"more than {self.limits.max_members} archive members")
        full = f"{self.member}/{name}" if self.member else name
        child = Ctx(self.budget, self.dispatch, self.chunks, full, self.depth + 1, self.problems, self.pictures,
                    self.raw)
        self.dispatch(data, child)


class TopLines:
    """Hands out the zone for successive lines: the first non-empty ones of the
    first page are first_page_top, later ones body."""

    def __init__(self, n: int = FIRST_LINES):
        self.left = n

    def zone(self, text: str) -> str:
        if self.left > 0 and text.strip():
            self.left -= 1
            return "first_page_top"
        return "body"

    def close(self) -> None:
        self.left = 0
