"""Excel binary workbooks (.xlsb, Excel's "binary workbook" save, [MS-XLSB]): a package
like xlsx whose workbook, sheets, shared strings and comments are BIFF12 records, not
XML. Read as xlsx is: shared and inline strings and formula results in workbook order,
page headers and footers, comments; properties, drawings, charts and embedded objects
are the same XML parts as in xlsx."""
from __future__ import annotations

import struct
import zipfile
from typing import Iterator

from .base import Ctx, Incomplete
from .ooxml import HEADERS_FOOTERS, part_rels, properties, shown_parts
from .xmlutil import cells_to_chunks, header_footer_pieces, open_zip, read_member

# record types ([MS-XLSB] 2.3)
ROW_HDR, CELL_ST, CELL_ISST, FMLA_STRING, CELL_RSTRING = 0, 6, 7, 8, 62
SST_ITEM, BUNDLE_SH, HEADER_FOOTER, COMMENT_TEXT = 19, 156, 479, 637
CELL_HEAD = 8     # a cell's column (4 bytes) and style and flags (4 bytes), before its value


def records(data: bytes, part: str) -> Iterator[tuple[int, memoryview]]:
    """(type, body) of each record: a type of one or two bytes and a size of up to
    four, seven bits a byte, the high bit saying another byte follows."""
    view, i, n = memoryview(data), 0, len(data)
    while i < n:
        typ, i = _varint(view, i, 2, part)
        size, i = _varint(view, i, 4, part)
        if i + size > n:
            raise Incomplete("corrupt", f"{part}: record {typ} runs past the end of the part")
        yield typ, view[i:i + size]
        i += size


def _varint(view: memoryview, i: int, most: int, part: str) -> tuple[int, int]:
    value = 0
    for k in range(most):
        if i >= len(view):
            raise Incomplete("corrupt", f"{part}: truncated record header")
        b = view[i]
        i += 1
        value |= (b & 0x7F) << (7 * k)
        if not b & 0x80:
            break
    return value, i


def wide_string(body: memoryview, at: int, nullable: bool = False) -> tuple[str, int]:
    """An XLWideString (a count of UTF-16 units, then the units) at `at`; the text and
    where the next field starts. A nullable one of count 0xFFFFFFFF is empty."""
    if at + 4 > len(body):
        raise ValueError("string past the end of its record")
    (count,) = struct.unpack_from("<I", body, at)
    at += 4
    if nullable and count == 0xFFFFFFFF:
        return "", at
    end = at + 2 * count
    if end > len(body):
        raise ValueError("string past the end of its record")
    return bytes(body[at:end]).decode("utf-16-le", errors="replace"), end


def _column(col: int) -> str:
    name = ""
    col += 1
    while col:
        col, rem = divmod(col - 1, 26)
        name = chr(65 + rem) + name
    return name


def _part(zf: zipfile.ZipFile, name: str, ctx: Ctx) -> bytes | None:
    try:
        info = zf.getinfo(name)
    except KeyError:
        return None
    return read_member(zf, info, ctx)


def _sheet(data: bytes, part: str, shared: list[str], ctx: Ctx) -> tuple[list[tuple[int, str, str]], list[tuple[str, str]]]:
    """The sheet's texts as (row, ref, text), and its headers and footers as (part, text)."""
    cells: list[tuple[int, str, str]] = []
    heads: list[tuple[str, str]] = []
    row = 0
    for typ, body in records(data, part):
        try:
            if typ == ROW_HDR and len(body) >= 4:
                row = struct.unpack_from("<I", body)[0] + 1
            elif typ in (CELL_ST, FMLA_STRING, CELL_RSTRING, CELL_ISST) and len(body) >= CELL_HEAD:
                if typ == CELL_ISST:
                    index = struct.unpack_from("<I", body, CELL_HEAD)[0] if len(body) >= CELL_HEAD + 4 else -1
                    text = shared[index] if 0 <= index < len(shared) else ""
                else:   # a rich string cell starts its value with a flags byte
                    text = wide_string(body, CELL_HEAD + (typ == CELL_RSTRING))[0]
                if text.strip():
                    col = struct.unpack_from("<I", body)[0]
                    cells.append((row, f"{_column(col)}{row}", text))
            elif typ == HEADER_FOOTER:
                at = 2   # flags: different odd/even and first pages
                for tag in ("oddHeader", "oddFooter", "evenHeader", "evenFooter", "firstHeader", "firstFooter"):
                    text, at = wide_string(body, at, nullable=True)
                    heads.append((tag, text))
        except ValueError as exc:
            raise Incomplete("corrupt", f"{part}: record {typ}: {exc}") from None
    return cells, heads


def xlsb(data: bytes, ctx: Ctx) -> None:
    zf = open_zip(data, ctx)
    properties(zf, ctx)
    shared: list[str] = []
    sst = _part(zf, "xl/sharedStrings.bin", ctx)
    for typ, body in records(sst or b"", "xl/sharedStrings.bin"):
        if typ == SST_ITEM:
            try:
                shared.append(wide_string(body, 1)[0])   # after the rich-text flags
            except ValueError as exc:
                raise Incomplete("corrupt", f"xl/sharedStrings.bin: {exc}") from None
    book = _part(zf, "xl/workbook.bin", ctx)
    if book is None:
        raise Incomplete("corrupt", f"{ctx.where()}: xl/workbook.bin is missing")
    rels = part_rels(zf, "xl/workbook.bin", ctx)
    sheets = []
    for typ, body in records(book, "xl/workbook.bin"):
        if typ == BUNDLE_SH:   # state, tab id, relationship id, name
            try:
                rel, at = wide_string(body, 8, nullable=True)
                sheets.append((wide_string(body, at)[0], rels.get(rel, "")))
            except ValueError as exc:
                raise Incomplete("corrupt", f"xl/workbook.bin: sheet entry: {exc}") from None
    for i, (name, part) in enumerate(sheets):
        body = _part(zf, part, ctx) if part else None
        if body is None:
            continue
        cells, heads = _sheet(body, part, shared, ctx)
        cells_to_chunks(ctx, name, i == 0, cells)
        for tag, text in heads:
            if tag in HEADERS_FOOTERS:
                for piece in header_footer_pieces(text):
                    ctx.add("header" if "Header" in tag else "footer", piece, sheet=name, part=tag)
    for info in zf.infolist():
        if info.filename.startswith("xl/comments") and info.filename.endswith(".bin"):
            n = 0
            for typ, body in records(read_member(zf, info, ctx), info.filename):
                if typ == COMMENT_TEXT:
                    n += 1
                    try:
                        ctx.add("body", wide_string(body, 1)[0], part=info.filename, paragraph=n)
                    except ValueError as exc:
                        raise Incomplete("corrupt", f"{info.filename}: {exc}") from None
    shown_parts(zf, ctx)
