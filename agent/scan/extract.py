"""Extraction: bytes of any supported format → TextChunks in zones.

extract(path, limits) never raises for bad content: a malformed, truncated,
encrypted or hostile file gives inspectable=False with a reason and whatever
text was found before the problem. It raises OSError only for the path itself
(vanished, unreadable), which the engine reports.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import logging

from . import detect as d
from .extractors.base import Budget, Ctx, Incomplete
from .limits import Limits
from .verdict import TextChunk

logging.getLogger("pypdf").setLevel(logging.CRITICAL)  # damaged PDFs are reported in the verdict, not on stderr (pypdf logs its repairs as errors)


@dataclass
class Extraction:
    chunks: list[TextChunk]
    type: str
    inspectable: bool = True
    reason: str | None = None
    detail: str | None = None
    pictures: list[tuple[str, Callable[[], bytes]]] = field(default_factory=list)  # for ocr_pictures


def _extractors() -> dict[str, Callable[[bytes, Ctx], None]]:
    from .extractors import archive, html, mail, ofd, ole, ooxml, pdf, rtf, svg, text, xlsb, xps
    return {
        "text/html": html.html, d.XHTML: html.html, d.EML: mail.mail, "multipart/related": mail.mail,
        d.DOCX: ooxml.docx, d.XLSX: ooxml.xlsx, d.XLSB: xlsb.xlsb, d.PPTX: ooxml.pptx, d.OFD: ofd.ofd, d.XPS: xps.xps,
        d.DOC: ole.doc, d.WPS: ole.doc, d.XLS: ole.xls, d.ET: ole.xls, d.PPT: ole.ppt, d.DPS: ole.ppt,
        d.OLE: ole.other, d.ENCRYPTED_OOXML: ole.encrypted,
        "application/pdf": pdf.pdf, "image/svg+xml": svg.svg, "text/rtf": rtf.rtf, "application/rtf": rtf.rtf,
        d.ZIP: archive.zip_, "application/x-tar": archive.tar, "application/gzip": archive.compressed,
        "application/x-gzip": archive.compressed, "application/x-bzip2": archive.compressed,
        "application/x-xz": archive.compressed, "application/x-7z-compressed": archive.sevenzip,
        **{m: archive.libarchive_ for m in archive.LIBARCHIVE_CONTAINERS + archive.LIBARCHIVE_STREAMS},
    }


_NO_TEXT = ("image/", "audio/", "video/", "font/")
_NO_TEXT_MEMBER = ("audio/", "video/", "font/")
_FONTS = ("application/vnd.ms-opentype", "application/vnd.ms-fontobject", "application/x-font-ttf")


def _extractor(mime: str) -> Callable[[bytes, Ctx], None] | None:
    fn = _extractors().get(mime)
    if fn is None and mime.startswith(d.ODF_PREFIX):  # every OpenDocument kind shares one reader
        from .extractors import odf
        fn = odf.flat if mime.endswith(d.ODF_FLAT_SUFFIX) else odf.odf
    if fn is None and mime.startswith("image/"):
        from .extractors import image
        fn = image.image
    return fn


RANDOM_BITS = 7.95  # bits per byte: ciphertext (VeraCrypt volume, gpg --symmetric output); text and code sit far below


def looks_random(data: bytes, sample: int = 65536) -> bool:
    """Whether bytes of no known type look like ciphertext: a near-flat byte
    distribution (Shannon entropy of the first 64 KiB). A container that hides
    its content this way counts as encrypted, not as merely unsupported."""
    import math
    from collections import Counter
    head = data[:sample]
    if len(head) < 4096:
        return False  # too little to tell
    n = len(head)
    return -sum(c / n * math.log2(c / n) for c in Counter(head).values()) >= RANDOM_BITS


def dispatch(data: bytes, ctx: Ctx) -> str:
    """Detect the type of data and run its extractor into ctx; returns the type."""
    from .extractors import text
    mime = d.detect(data)
    fn = _extractor(mime)
    if fn is None:
        if mime.startswith("text/") or mime in ("application/json", "application/xml", "application/x-empty",
                                               "application/csv", "application/javascript"):
            fn = text.text
        elif not mime.startswith(_NO_TEXT) and text.looks_like_text(data):
            fn, mime = text.text, "text/plain"  # libmagic calls some UTF-8 Chinese text a DOS .COM program
        elif mime == "application/octet-stream" and looks_random(data):
            ctx.problem("encrypted", f"{ctx.where()}: no known type and random-looking bytes (encrypted data?)")
            return mime
        elif ctx.member and (mime.startswith(_NO_TEXT_MEMBER) or mime in _FONTS):
            _raw(data, ctx)  # unless a marking was slipped in behind a sound's header
            return mime  # a sound, film or font inside a document or archive: nothing to read, nothing missed
        elif mime == "application/octet-stream" and _only_zeros(data):
            return mime   # a hole (a sparse or preallocated file): nothing is written in it
        elif mime == "application/octet-stream" and (holed := _text_with_holes(data)) is not None:
            _run(text.text, holed, ctx)   # text written with holes of zeros between its blocks
            return "text/plain"
        else:
            inner = _carried(data, ctx)
            if inner is not None:
                _raw(data, ctx)   # and what the prefix itself may say
                return inner
            if d.damaged_pdf(data):
                _damaged_pdf(data, ctx, always=True)
                _raw(data, ctx)
                return "application/pdf"
            no_text = mime.startswith(_NO_TEXT) or mime in ("application/x-executable", "application/x-sharedlib",
                                                           "application/x-pie-executable", "application/octet-stream")
            ctx.problem("unsupported", f"{ctx.where()}: {mime} carries no text baomi can read" if no_text
                        else f"{ctx.where()}: no extractor for {mime}")
            _raw(data, ctx)
            return mime
    _run(fn, data, ctx)
    if fn is text.text:   # text before a PDF or a zip, which their readers find behind it
        if _carried(data, ctx, programs=False) is None and d.damaged_pdf(data) and _damaged_pdf(data, ctx):
            return "application/pdf"   # an uncompressed PDF with its header broken reads as text, and is not
    return mime


def _damaged_pdf(data: bytes, ctx: Ctx, always: bool = False) -> bool:
    """A PDF that pdfium does not open: what a repairing reader still gives back of it
    counts, and the file is corrupt (always, or where that reader found a page of text)."""
    from .extractors import pdf
    got = pdf.recover(data, ctx)
    if got or always:
        ctx.problem("corrupt", f"{ctx.where()}: a damaged PDF (its objects are there, but pdfium does not open it)"
                    + pdf.recovered(got))
    return bool(got or always)


def _run(fn: Callable[[bytes, Ctx], None], data: bytes, ctx: Ctx) -> None:
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


def _only_zeros(data: bytes) -> bool:
    return bool(data) and data[0] == 0 and data[-1] == 0 and data.count(0) == len(data)


_HOLE_MIN = 4096   # a sparse file's holes are whole filesystem blocks of zeros
_HOLE = re.compile(rb"\0{%d,}" % _HOLE_MIN)


def _text_with_holes(data: bytes) -> bytes | None:
    """The text of a file whose only zeros are holes between its blocks (a sparse file,
    one written by seeking ahead), the holes as line breaks; None when it is not that."""
    from .extractors import text
    first = data.find(b"\0")
    if first < 0 or not data.startswith(bytes(_HOLE_MIN), first):
        return None   # no zeros, or short runs of them (most binaries): no pass over the whole file
    filled = _HOLE.sub(b"\n", data)
    if b"\0" in filled or not filled.strip() or not text.looks_like_text(filled):
        return None
    return filled


# what a reader that found nothing says of bytes that were not its format after all
_NOT_ITS_FORMAT = ("corrupt", "unreadable", "unsupported")


def _carried(data: bytes, ctx: Ctx, programs: bool = True) -> str | None:
    """A document or archive behind a prefix its readers skip (detect.carried): a PDF after
    junk, a self-extracting archive. Read where its reader makes sense of it (some text,
    or a verdict such as encrypted or over the limits); the type read, else None."""
    for mime, start in d.carried(data, programs):
        fn = _extractor(mime)
        if fn is None:
            continue
        trial = Ctx(ctx.budget, ctx.dispatch, [], ctx.member, ctx.depth, [], [], ctx.raw)
        _run(fn, data[start:] if start else data, trial)
        if trial.chunks or any(reason not in _NOT_ITS_FORMAT for reason, _ in trial.problems):
            ctx.chunks.extend(trial.chunks)
            ctx.problems.extend(trial.problems)
            ctx.pictures.extend(trial.pictures)
            return mime
    return None


def _raw(data: bytes, ctx: Ctx) -> None:
    """A marking in the bytes of what no reader understands (a program, a database, text
    behind a foreign header) still counts, though the file stays not inspectable."""
    if ctx.raw:
        from .extractors import raw
        raw.strings(data, ctx, ctx.raw)


# the order in which reasons win when several parts failed differently
_RANK = ("encrypted", "too_large", "limit_exceeded", "timeout", "corrupt", "unreadable", "unsupported")


def _result(ctx: Ctx, mime: str) -> Extraction:
    if not ctx.problems:
        return Extraction(ctx.chunks, mime, pictures=ctx.pictures)
    reasons = [r for r, _ in ctx.problems]
    reason = min(reasons, key=lambda r: _RANK.index(r) if r in _RANK else len(_RANK))
    detail = "; ".join(dict.fromkeys(det for _, det in ctx.problems))[:1000]
    return Extraction(ctx.chunks, mime, False, reason, detail, ctx.pictures)


def _root(limits: Limits, depth: int = 0, raw: tuple[str, ...] = ()) -> Ctx:
    """The context of a whole file: nested content comes back through dispatch."""
    return Ctx(Budget(limits), dispatch, depth=depth, raw=raw)


def extract_bytes(data: bytes, name: str, limits: Limits, depth: int = 0, raw: tuple[str, ...] = ()) -> Extraction:
    ctx = _root(limits, depth, raw)
    ctx.budget.take(len(data), name)
    return _result(ctx, dispatch(data, ctx))


def too_large(head: bytes, size: int, limits: Limits) -> Extraction:
    return Extraction([], d.magic_type(head), False, "too_large",
                      f"{size} bytes, above max_file_bytes {limits.max_file_bytes}")


def extract_data(data: bytes, limits: Limits, raw: tuple[str, ...] = ()) -> Extraction:
    """Extract a whole file already read into memory; `raw`: the literals to look for in
    bytes of no known format (RuleSet.raw_literals)."""
    if len(data) > limits.max_file_bytes:
        return too_large(data[:65536], len(data), limits)
    ctx = _root(limits, raw=raw)
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
    want = min(size, cap) + 1
    first = f.read(want)
    if len(first) < want:
        return first    # the whole file in one read, as nearly always: no copy
    data = bytearray(first)
    while len(data) <= cap:
        block = f.read(min(1024 * 1024, cap + 1 - len(data)))
        if not block:
            break
        data += block
    return bytes(data)


def ocr_pictures(ex: Extraction, limits: Limits) -> list[TextChunk]:
    """The OCR text of the pictures inside a document (docx/xlsx/pptx, ODF), for a
    document whose text carries no marking: at most ocr_embedded pictures, within
    the OCR limits. Best effort — a picture that cannot be read does not make the
    document uninspectable. In a document that has text, what the pictures say is
    body (a photo's sign is not the top of the first page); a document made only
    of pictures (a scan pasted into Word) keeps the zones of its first picture."""
    if not (limits.ocr and limits.ocr_embedded > 0 and ex.pictures):
        return []
    from .extractors import image
    root = _root(limits)
    for name, load in ex.pictures[:limits.ocr_embedded]:
        child = Ctx(root.budget, dispatch, root.chunks, name, 1)
        try:
            image.image(load(), child)
        except Incomplete as exc:
            if exc.reason == "limit_exceeded" or "OCR is" in exc.detail:
                break  # the budget is spent, or OCR cannot run here: the other pictures fare no better
        except Exception:  # a damaged picture: skip it
            continue
    has_text = any(c.zone != "metadata" for c in ex.chunks)
    first = root.chunks[0].location.get("member") if root.chunks else None
    for c in root.chunks:
        if has_text or c.location.get("member") != first:
            c.zone = "body"
    return root.chunks
