"""RTF: control words stripped with striprtf; \\'xx bytes decoded in the code
page the document declares (\\ansicpg936 = GBK), \\uN escapes as Unicode.
striprtf drops destinations it does not render, so page headers and footers
({\\header …}, {\\footerl …}) and the text of shapes and frames
({\\*\\shpinst … {\\shptxt …}}) are cut out first and read on their own, and a
SYMBOL field (a Wingdings ★ from Insert > Symbol) becomes its character. The text of
WordArt and of a watermark (the `gtextUNICODE` property of a shape, `{\\sp{\\sn
gtextUNICODE}{\\sv …}}`) is read too, in the header when the shape sits there, and the
cells of a table in a header or footer are set apart like its tabs."""
from __future__ import annotations

import re
from typing import Iterator

from striprtf.striprtf import rtf_to_text

from .base import Ctx, Incomplete, TopLines

_CPG = re.compile(rb"\\ansicpg(\d+)")
_GROUP_WORD = re.compile(r"\{\\(?:\*\\)?(header[lrf]?|footer[lrf]?|shptxt|field)(?![a-z])")
_SYMBOL = re.compile(r'SYMBOL\s+(\d+)\s+\\\\?f\s+"?(Wingdings|Symbol)', re.I)
_GTEXT = re.compile(r"\{\\sp\s*\{\\sn\s+gtextUNICODE\}\s*\{\\sv\s?((?:[^{}\\]|\\.)*)\}\s*\}")
_CELL = re.compile(r"\\cell(?![a-z])")
MAX_GROUPS = 10000


def _group_end(raw: str, start: int) -> int:
    """The index after the brace closing the group opened at raw[start]."""
    depth, i, n = 0, start, len(raw)
    while i < n:
        ch = raw[i]
        if ch == "\\":
            i += 2  # an escaped brace or backslash, or the first letter of a control word
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return n


def _groups(raw: str) -> Iterator[tuple[str, int, int, int]]:
    """(word, start, end of the control word, end) of each header/footer/shape-text/field group, outermost first."""
    pos, found = 0, 0
    while found < MAX_GROUPS:
        m = _GROUP_WORD.search(raw, pos)
        if m is None:
            return
        end = _group_end(raw, m.start())
        yield m.group(1), m.start(), m.end(), end
        found += 1
        pos = end  # nested groups go with their outer group: each byte is scanned once


def _split(raw: str) -> tuple[str, list[tuple[str, str]]]:
    """The document without its header/footer/shape groups, and those groups' inner RTF with
    their zone; SYMBOL fields replaced by the character they show."""
    body: list[str] = []
    parts: list[tuple[str, str]] = []
    pos = 0
    for word, start, word_end, end in _groups(raw):
        body.append(raw[pos:start])
        inner = raw[word_end:end - 1]
        if word == "field":
            sym = _SYMBOL.search(inner)
            # Wingdings and Symbol characters live at U+F000 + code in Word's private-use area
            body.append(f"\\u{0xF000 + int(sym.group(1))}?" if sym and int(sym.group(1)) < 256 else raw[start:end])
        else:
            zone = "header" if word.startswith("header") else "footer" if word.startswith("footer") else "shape"
            parts.append((zone, _CELL.sub(r"\\tab ", inner) if zone != "shape" else inner))
        pos = end
    body.append(raw[pos:])
    rest = "".join(body)
    parts.extend(("shape", g.group(1)) for g in _GTEXT.finditer(rest))   # WordArt, a watermark
    return rest, parts


def _text(body: str, encoding: str) -> str:
    return rtf_to_text("{\\rtf1 " + body + "}", encoding=encoding, errors="replace")


def rtf(data: bytes, ctx: Ctx) -> None:
    m = _CPG.search(data[:4096])
    encoding = f"cp{int(m.group(1))}" if m else "cp1252"
    if encoding == "cp936":
        encoding = "gbk"
    try:
        "".encode(encoding)
    except LookupError:
        encoding = "cp1252"
    raw = data.decode("latin-1")
    try:
        body, parts = _split(raw)
        content = rtf_to_text(body, encoding=encoding, errors="replace")
        pieces = []
        for zone, inner in parts:
            rest, nested = _split(inner)
            pieces.append((zone, _text(rest, encoding)))
            for z, sub in nested:   # a SYMBOL star, a frame or a watermark inside a header is the header's
                pieces.append((zone if zone != "shape" else z, _text(_split(sub)[0], encoding)))
    except Exception as exc:
        raise Incomplete("corrupt", f"{ctx.where()}: RTF not readable: {exc}") from None
    top = TopLines()
    for zone, text in pieces:
        for line in text.splitlines():
            if line.strip():
                # shape text (a template's marking box) joins the first lines, like a docx text box
                ctx.add(top.zone(line) if zone == "shape" else zone, line, part=zone)
    for n, line in enumerate(content.splitlines(), 1):
        if line.strip():
            ctx.add(top.zone(line), line, line=n)
