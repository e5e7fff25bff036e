"""SVG drawings (Inkscape, draw.io, Visio's export): the text of each `text` element
(its `tspan`s joined) and any other text the drawing holds (draw.io's labels in
`foreignObject`), in document order, and its `title` and `desc`. A drawing whose
words are paths (text converted to outlines, a page saved by pdftocairo) has nothing
to read: it is not counted as read, as SVG is not rendered for OCR."""
from __future__ import annotations

from typing import Iterator
from xml.etree.ElementTree import Element

from .base import Ctx, Incomplete, TopLines
from .xmlutil import local, parse

_DRAWN = frozenset({"path", "polygon", "polyline", "image", "use"})
_SKIPPED = frozenset({"style", "script", "title", "desc", "metadata"})


def _texts(el: Element) -> Iterator[str]:
    """Each `text` element whole, every other text node on its own, in document order."""
    tag = local(el.tag)
    if tag == "text":
        yield "".join(el.itertext())
    elif tag not in _SKIPPED:
        if el.text:
            yield el.text
        for child in el:
            yield from _texts(child)
            if child.tail:
                yield child.tail


def svg(data: bytes, ctx: Ctx) -> None:
    root = parse(data, ctx.where())
    top, n = TopLines(), 0
    for text in _texts(root):
        line = " ".join(text.split())
        if line:
            n += 1
            ctx.add(top.zone(line), line, line=n)
    drawn = False
    for el in root.iter():
        tag = local(el.tag)
        if tag in ("title", "desc") and el.text and el.text.strip():
            ctx.add("metadata", el.text, key=tag)
        drawn = drawn or tag in _DRAWN
    if not n and drawn:
        raise Incomplete("unsupported", f"{ctx.where()}: an SVG drawing without text (outlines or pictures), "
                                        "which is not OCR'd")
