"""XPS and OpenXPS (.xps, .oxps: what Windows' "Microsoft XPS Document Writer" and
"Print to XPS" write): a package of fixed pages whose Glyphs elements carry the text
(UnicodeString) at a position. Pages are read in the order of the document sequence
and each document; the pieces of a page are put back into lines by position, as in
OFD. A page that draws without any text (text turned into outlines, a scan) is not
counted as read: XPS pages are not rendered for OCR."""
from __future__ import annotations

import posixpath
import re
import zipfile
from typing import Iterator
from xml.etree.ElementTree import Element

from .base import Ctx, TopLines
from .ooxml import properties
from .xmlutil import local, open_zip, optional_xml

Matrix = tuple[float, float, float, float, float, float]
IDENTITY: Matrix = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)
LINE_TOLERANCE = 3.0   # page units (1/96 inch) between baselines of one line
_DRAWN = ("Path", "Glyphs")


def _matrix(text: str | None) -> Matrix | None:
    try:
        m = tuple(float(x) for x in (text or "").replace(" ", ",").split(",") if x)
    except ValueError:
        return None
    return m if len(m) == 6 else None  # type: ignore[return-value]


def _compose(outer: Matrix, inner: Matrix) -> Matrix:
    a, b, c, d, e, f = inner
    A, B, C, D, E, F = outer
    return (a * A + b * C, a * B + b * D, c * A + d * C, c * B + d * D, e * A + f * C + E, e * B + f * D + F)


def _own_transform(el: Element) -> Matrix | None:
    """RenderTransform as an attribute or as a property element holding a MatrixTransform."""
    m = _matrix(el.get("RenderTransform"))
    if m is None:
        for child in el:
            if local(child.tag).endswith(".RenderTransform"):
                for mt in child:
                    m = _matrix(mt.get("Matrix"))
    return m


def _advance(text: str, em: float, indices: str | None) -> float:
    """How wide a run is printed: the advances its Indices give (hundredths of an em,
    as Windows writes them), else about a full em for Chinese and half for the rest."""
    given = []
    for entry in (indices or "").split(";"):
        fields = entry.split(",")
        try:
            given.append(float(fields[1]) * em / 100 if len(fields) > 1 and fields[1] else None)
        except ValueError:
            given.append(None)
    width = 0.0
    for i, ch in enumerate(text):
        adv = given[i] if i < len(given) else None
        width += adv if adv is not None else em if ord(ch) >= 0x2E80 else 0.5 * em
    return width


def _pieces(el: Element, at: Matrix) -> Iterator[tuple[float, float, str, float, float]]:
    """(y, x, text, width, em) of every Glyphs under el, in page coordinates."""
    for child in el:
        tag = local(child.tag)
        if "." in tag:   # a property element (Canvas.Resources, Path.Fill...)
            continue
        here = _compose(at, _own_transform(child) or IDENTITY)
        if tag == "Glyphs":
            text = child.get("UnicodeString") or ""
            text = text[2:] if text.startswith("{}") else text   # "{}" escapes a string starting with "{"
            try:
                x, y = float(child.get("OriginX") or 0), float(child.get("OriginY") or 0)
                em = float(child.get("FontRenderingEmSize") or 0)
            except ValueError:
                x = y = em = 0.0
            if text:   # a run of one space is how Windows prints the gap between words
                yield (here[1] * x + here[3] * y + here[5], here[0] * x + here[2] * y + here[4], text,
                       abs(here[0]) * _advance(text, em, child.get("Indices")), abs(here[0]) * em)
        else:
            yield from _pieces(child, here)


def page_lines(root: Element) -> list[str]:
    lines: list[list[tuple[float, float, str, float, float]]] = []
    for piece in sorted(_pieces(root, IDENTITY)):
        if lines and abs(lines[-1][0][0] - piece[0]) <= LINE_TOLERANCE:
            lines[-1].append(piece)
        else:
            lines.append([piece])
    out = []
    for line in lines:
        joined, end = "", None
        for _y, x, text, width, em in sorted(line, key=lambda p: p[1]):
            # runs that follow on where the last one ended are one word; a gap is a space
            if end is not None and x - end > max(0.2 * em, 1.0) and not joined.endswith(" "):
                joined += " "
            joined += text
            end = x + width
        if joined.strip():
            out.append(" ".join(joined.split()))
    return out


def _drawn(root: Element) -> bool:
    return any(local(el.tag) in _DRAWN for el in root.iter())


def _natural(name: str) -> list[object]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def _resolve(base: str, source: str) -> str:
    return source.lstrip("/") if source.startswith("/") else posixpath.normpath(posixpath.join(base, source))


def pages(zf: zipfile.ZipFile, ctx: Ctx) -> list[str]:
    """The fixed pages in reading order: the document sequence's documents, each
    document's pages; without a sequence, the page parts by name."""
    names = {n.lower(): n for n in zf.namelist()}
    seq = next((n for n in zf.namelist() if n.lower().endswith(".fdseq")), None)
    root = optional_xml(zf, seq, ctx) if seq else None
    if root is None:
        return sorted((n for n in zf.namelist() if n.lower().endswith(".fpage")), key=_natural)
    out = []
    for ref in root.iter():
        if local(ref.tag) != "DocumentReference" or not ref.get("Source"):
            continue
        doc_path = _resolve(posixpath.dirname(seq), ref.get("Source", ""))
        doc = optional_xml(zf, names.get(doc_path.lower(), doc_path), ctx)
        for page in doc.iter() if doc is not None else ():
            if local(page.tag) == "PageContent" and page.get("Source"):
                path = _resolve(posixpath.dirname(doc_path), page.get("Source", ""))
                out.append(names.get(path.lower(), path))
    return out


def xps(data: bytes, ctx: Ctx) -> None:
    zf = open_zip(data, ctx)
    properties(zf, ctx)
    blank = []
    for i, part in enumerate(pages(zf, ctx), 1):
        root = optional_xml(zf, part, ctx)
        if root is None:
            continue
        lines = page_lines(root)
        if not lines and _drawn(root):
            blank.append(i)
        top = TopLines() if i == 1 else None
        for n, line in enumerate(lines, 1):
            ctx.add(top.zone(line) if top else "body", line, page=i, line=n)
    if blank:
        ctx.problem("unsupported", f"{ctx.where()}: XPS page(s) {', '.join(map(str, blank[:10]))} draw without text "
                                   "(outlines or pictures), which is not OCR'd")
