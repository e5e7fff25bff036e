"""Helpers shared by the extractors of zip-based and spreadsheet formats.

Safe XML for hostile documents: defusedxml refuses entity expansion and
external references; zip members are read with size and ratio caps. Also the
zoning of spreadsheet cells, shared by xlsx and the legacy xls."""
from __future__ import annotations

import io
import re
import zipfile
from typing import Any
from xml.etree import ElementTree as CET
from xml.etree.ElementTree import Element

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException

from .base import Ctx, Incomplete

SMALL = 1024 * 1024  # below this a high compression ratio is normal (repetitive XML)


def local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, ctx: Ctx) -> bytes:
    """A member's bytes, refusing bombs before inflating them."""
    lim = ctx.limits
    name = f"{ctx.where()}:{info.filename}" if ctx.member else info.filename
    if info.flag_bits & 0x1:
        raise Incomplete("encrypted", f"{name} is encrypted")
    if info.file_size > SMALL and info.file_size > lim.max_ratio * max(1, info.compress_size):
        raise Incomplete("limit_exceeded", f"{name}: expands {info.file_size // max(1, info.compress_size)}x "
                                           f"(max_ratio {lim.max_ratio:g})")
    room = lim.max_archive_bytes - ctx.budget.unpacked
    if info.file_size > room:
        raise Incomplete("limit_exceeded", f"{name}: {info.file_size} bytes would pass max_archive_bytes")
    with zf.open(info) as f:
        data = f.read(min(room, max(info.file_size, 0)) + 1)  # never trust the header alone
    if len(data) > info.file_size or len(data) > room:
        raise Incomplete("limit_exceeded", f"{name}: larger than its header says")
    ctx.budget.take(len(data), name)
    return data


# XML with no DTD: what defusedxml refuses (entity declarations, external references)
# can only be declared in one, so the C parser, several times faster than defusedxml's
# Python one, reads it. The byte test holds for ASCII-compatible encodings, where a
# DOCTYPE shows as these bytes; anything else (UTF-16) goes to defusedxml.
_ASCII_XML_START = re.compile(rb"(?:\xef\xbb\xbf)?[ \t\r\n]*<[^\x00]")


def _without_dtd(data: bytes) -> bool:
    return _ASCII_XML_START.match(data) is not None and b"<!DOCTYPE" not in data and b"<!ENTITY" not in data


def parse(data: bytes, what: str) -> Element:
    try:
        if _without_dtd(data):
            return CET.fromstring(data)
        return SafeET.fromstring(data)
    except DefusedXmlException as exc:
        raise Incomplete("corrupt", f"{what}: refused XML ({type(exc).__name__})") from None
    except SafeET.ParseError as exc:
        raise Incomplete("corrupt", f"{what}: XML error: {exc}") from None


def open_zip(data: bytes, ctx: Ctx) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError) as exc:
        raise Incomplete("corrupt", f"{ctx.where()}: damaged zip container: {exc}") from None
    except NotImplementedError as exc:   # a zip version this reader does not know
        raise Incomplete("unreadable", f"{ctx.where()}: zip container not readable here: {exc}") from None


def read_xml(zf: zipfile.ZipFile, name: str, ctx: Ctx) -> Element | None:
    try:
        info = zf.getinfo(name)
    except KeyError:
        return None
    try:
        return parse(read_member(zf, info, ctx), name)
    except zipfile.BadZipFile as exc:
        raise Incomplete("corrupt", f"{ctx.where()}:{name}: {exc}") from None
    except (EOFError, OSError, ValueError) as exc:  # truncated deflate stream, bad CRC
        raise Incomplete("corrupt", f"{ctx.where()}:{name}: truncated or damaged ({exc})") from None


def required_xml(zf: zipfile.ZipFile, name: str, ctx: Ctx, shown: str | None = None) -> Element:
    """A part the document cannot do without: its absence makes the file corrupt."""
    root = read_xml(zf, name, ctx)
    if root is None:
        raise Incomplete("corrupt", f"{ctx.where()}: {shown or name} missing")
    return root


def optional_xml(zf: zipfile.ZipFile, name: str, ctx: Ctx) -> Element | None:
    """A part whose damage loses only that part: note it and go on."""
    try:
        return read_xml(zf, name, ctx)
    except Incomplete as exc:
        ctx.problem(exc.reason, exc.detail)
        return None


def cells_to_chunks(ctx: Ctx, sheet: str, first: bool, cells: list[tuple[int, str, str]]) -> None:
    """cells: (row, ref, text) in order. On the first sheet, the leading rows
    (at most three) holding one or two texts (a banner, a marking) are
    first_page_top; a register's header row and data rows are body."""
    by_row: dict[int, int] = {}
    for row, _ref, _text in cells:
        by_row[row] = by_row.get(row, 0) + 1
    rows = sorted(by_row)
    top_rows: set[int] = set()
    for i, row in enumerate(rows[:3] if first else []):
        nxt = by_row[rows[i + 1]] if i + 1 < len(rows) else 0
        # the banner ends where a table starts: a wider row, or a pair of cells
        # repeated on the next row (a two-column register)
        if by_row[row] > 2 or (by_row[row] == 2 and nxt == 2):
            break
        top_rows.add(row)
    for row, ref, text in cells:
        zone = "first_page_top" if row in top_rows else "body"
        ctx.add(zone, text, sheet=sheet, cell=ref)


_HF_CODES = re.compile(r"&(?:[LCRPNDTZFAGSUXYEB]|\d+|\"[^\"]*\")")


def header_footer_pieces(text: str) -> list[str]:
    """A spreadsheet page header/footer (`&L&10机密★1年&C标题&R&P`) as the texts of
    its left, centre and right sections, formatting codes removed (xlsx and xls)."""
    return [p for p in (_HF_CODES.sub("", piece).strip() for piece in re.split(r"&[LCR]", text)) if p]


PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp")


def note_pictures(zf: zipfile.ZipFile, ctx: Ctx, folders: tuple[str, ...]) -> None:
    """The pictures stored in the package's media folders, for OCR when the text carries
    no marking; read (and charged to the budget) only then."""
    for info in zf.infolist():
        name = info.filename
        if name.startswith(folders) and name.lower().endswith(PICTURE_SUFFIXES):
            ctx.picture(name, lambda info=info: read_member(zf, info, ctx))
