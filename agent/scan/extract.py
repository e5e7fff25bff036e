"""Extraction: bytes of any supported format → TextChunks in zones.

extract(path, limits) never raises for bad content: a malformed, truncated,
encrypted or hostile file gives inspectable=False with a reason and whatever
text was found before the problem. It raises OSError only for the path itself
(vanished, unreadable), which the engine reports.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import logging

from . import detect as d
from .limits import Limits
from .model import TextChunk

logging.getLogger("pypdf").setLevel(logging.ERROR)  # damaged PDFs are reported in the verdict, not on stderr

FIRST_LINES = 8  # GB/T 9704 puts the marking in the first lines of the first page


class Incomplete(Exception):
    """Raised by an extractor that cannot go on: the reason and a detail for people."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


@dataclass
class Extraction:
    chunks: list[TextChunk]
    type: str
    inspectable: bool = True
    reason: str | None = None
    detail: str | None = None


@dataclass
class Budget:
    """Shared by every member of one file, however deeply nested."""
    limits: Limits
    unpacked: int = 0
    members: int = 0

    def take(self, size: int, what: str) -> None:
        self.unpacked += size
        if self.unpacked > self.limits.max_archive_bytes:
            raise Incomplete("limit_exceeded", f"{what}: more than {self.limits.max_archive_bytes} bytes unpacked")


@dataclass
class Ctx:
    """What an extractor needs: limits, where it is (member path, depth) and where to put text."""
    budget: Budget
    chunks: list[TextChunk] = field(default_factory=list)
    member: str | None = None
    depth: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)  # (reason, detail) of parts not inspected

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

    def where(self) -> str:
        return self.member or "file"


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


def _extractors() -> dict[str, Callable[[bytes, Ctx], None]]:
    from .extractors import archive, ofd, ole, ooxml, pdf, rtf, text
    return {
        d.DOCX: ooxml.docx, d.XLSX: ooxml.xlsx, d.PPTX: ooxml.pptx, d.OFD: ofd.ofd,
        d.DOC: ole.doc, d.WPS: ole.doc, d.XLS: ole.xls, d.ET: ole.xls, d.PPT: ole.ppt, d.DPS: ole.ppt,
        d.OLE: ole.other, d.ENCRYPTED_OOXML: ole.encrypted,
        "application/pdf": pdf.pdf, "text/rtf": rtf.rtf, "application/rtf": rtf.rtf,
        d.ZIP: archive.zip_, "application/x-tar": archive.tar, "application/gzip": archive.compressed,
        "application/x-gzip": archive.compressed, "application/x-bzip2": archive.compressed,
        "application/x-xz": archive.compressed, "application/x-7z-compressed": archive.sevenzip,
    }


_NO_TEXT = ("image/", "audio/", "video/", "font/")


def dispatch(data: bytes, ctx: Ctx) -> str:
    """Detect the type of data and run its extractor into ctx; returns the type."""
    mime = d.detect(data)
    fn = _extractors().get(mime)
    if fn is None:
        from .extractors import text
        if mime.startswith("text/") or mime in ("application/json", "application/xml", "application/x-empty",
                                               "application/csv", "application/javascript"):
            fn = text.text
        elif not mime.startswith(_NO_TEXT) and text.looks_like_text(data):
            fn, mime = text.text, "text/plain"  # libmagic calls some UTF-8 Chinese text a DOS .COM program
        elif mime.startswith(_NO_TEXT) or mime in ("application/x-executable", "application/x-sharedlib",
                                                  "application/x-pie-executable", "application/octet-stream"):
            ctx.problem("unsupported", f"{ctx.where()}: {mime} carries no text baomi can read")
            return mime
        else:
            ctx.problem("unsupported", f"{ctx.where()}: no extractor for {mime}")
            return mime
    try:
        fn(data, ctx)
    except Incomplete as exc:
        ctx.problem(exc.reason, exc.detail)
    except MemoryError:
        raise
    except RecursionError:
        ctx.problem("limit_exceeded", f"{ctx.where()}: nesting too deep")
    except Exception as exc:  # a parser choking on hostile bytes is a corrupt file, not a crash
        ctx.problem("corrupt", f"{ctx.where()}: {type(exc).__name__}: {exc}"[:300])
    return mime


def member(data: bytes, name: str, parent: Ctx) -> None:
    """Extract an archive member (or embedded part) into the parent's chunks."""
    if parent.depth + 1 > parent.limits.max_depth:
        parent.problem("limit_exceeded", f"{name}: nested deeper than {parent.limits.max_depth}")
        return
    parent.budget.members += 1
    if parent.budget.members > parent.limits.max_members:
        raise Incomplete("limit_exceeded", f"more than {parent.limits.max_members} archive members")
    full = f"{parent.member}/{name}" if parent.member else name
    child = Ctx(parent.budget, parent.chunks, full, parent.depth + 1, parent.problems)
    dispatch(data, child)


# the order in which reasons win when several parts failed differently
_RANK = ("encrypted", "too_large", "limit_exceeded", "timeout", "corrupt", "unsupported")


def _result(ctx: Ctx, mime: str) -> Extraction:
    if not ctx.problems:
        return Extraction(ctx.chunks, mime)
    reasons = [r for r, _ in ctx.problems]
    reason = min(reasons, key=lambda r: _RANK.index(r) if r in _RANK else len(_RANK))
    detail = "; ".join(dict.fromkeys(det for _, det in ctx.problems))[:1000]
    return Extraction(ctx.chunks, mime, False, reason, detail)


def extract_bytes(data: bytes, name: str, limits: Limits, depth: int = 0) -> Extraction:
    ctx = Ctx(Budget(limits), depth=depth)
    ctx.budget.take(len(data), name)
    return _result(ctx, dispatch(data, ctx))


def too_large(head: bytes, size: int, limits: Limits) -> Extraction:
    return Extraction([], d.magic_type(head), False, "too_large",
                      f"{size} bytes, above max_file_bytes {limits.max_file_bytes}")


def extract_data(data: bytes, limits: Limits) -> Extraction:
    """Extract a whole file already read into memory."""
    if len(data) > limits.max_file_bytes:
        return too_large(data[:65536], len(data), limits)
    ctx = Ctx(Budget(limits))
    return _result(ctx, dispatch(data, ctx))


def extract(path: Path | str, limits: Limits) -> Extraction:
    """Extract a file; symbolic links are not followed (OSError ELOOP)."""
    fd = os.open(Path(path), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size > limits.max_file_bytes:
            return too_large(f.read(65536), size, limits)
        data = read_capped(f, size, limits.max_file_bytes)
    return extract_data(data, limits)


def read_capped(f: Any, size: int, cap: int) -> bytes:
    """The file's bytes, up to cap + 1 (so growth past the cap shows); never a
    buffer of cap bytes up front, which a memory-capped worker cannot afford."""
    data = bytearray(f.read(min(size, cap) + 1))
    while len(data) <= cap:
        block = f.read(min(1024 * 1024, cap + 1 - len(data)))
        if not block:
            break
        data += block
    return bytes(data)
