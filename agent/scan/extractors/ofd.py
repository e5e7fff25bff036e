"""OFD (GB/T 33190): a zip of XML. OFD.xml's DocInfo (title, author, keywords,
CustomDatas) is metadata; each page's Content.xml holds TextObjects whose
TextCode pieces are put back into lines by their position."""
from __future__ import annotations

import posixpath

from .base import Ctx, TopLines
from .xmlutil import local, open_zip, optional_xml, read_xml, required_xml


def _floats(s: str | None) -> list[float]:
    try:
        return [float(x) for x in (s or "").split()]
    except ValueError:
        return []


def _page_lines(root) -> list[str]:
    pieces: list[tuple[float, float, str]] = []
    for obj in root.iter():
        if local(obj.tag) != "TextObject":
            continue
        box = _floats(obj.get("Boundary")) + [0.0, 0.0]
        for code in obj:
            if local(code.tag) == "TextCode" and code.text:
                x = box[0] + (_floats(code.get("X")) or [0.0])[0]
                y = box[1] + (_floats(code.get("Y")) or [0.0])[0]
                pieces.append((y, x, code.text))
    pieces.sort()
    lines: list[list[tuple[float, float, str]]] = []
    for y, x, t in pieces:
        if lines and abs(lines[-1][0][0] - y) <= 2.0:  # same baseline (mm)
            lines[-1].append((y, x, t))
        else:
            lines.append([(y, x, t)])
    return ["".join(t for _y, _x, t in sorted(line, key=lambda p: p[1])) for line in lines]


def ofd(data: bytes, ctx: Ctx) -> None:
    zf = open_zip(data, ctx)
    names = {n.lower(): n for n in zf.namelist()}
    root = required_xml(zf, names.get("ofd.xml", "OFD.xml"), ctx, "OFD.xml")
    doc_roots = []
    for el in root.iter():
        tag = local(el.tag)
        if tag == "DocRoot" and el.text:
            doc_roots.append(el.text.strip().lstrip("/"))
        elif tag == "CustomData" and el.text and el.get("Name"):
            ctx.add("metadata", el.text, key=el.get("Name"), part="OFD.xml")
        elif tag in ("Title", "Author", "Subject", "Abstract", "Keyword", "Creator") and el.text:
            ctx.add("metadata", el.text, key=tag, part="OFD.xml")
    for doc_root in doc_roots:
        doc = read_xml(zf, names.get(doc_root.lower(), doc_root), ctx)
        if doc is None:
            ctx.problem("corrupt", f"{ctx.where()}: {doc_root} missing")
            continue
        base = posixpath.dirname(doc_root)
        pages = [p.get("BaseLoc", "") for p in doc.iter() if local(p.tag) == "Page"]
        for i, loc in enumerate(pages, 1):
            path = posixpath.normpath(posixpath.join(base, loc.lstrip("/"))) if not loc.startswith("/") \
                else loc.lstrip("/")
            page = optional_xml(zf, names.get(path.lower(), path), ctx)
            if page is None:
                continue
            top = TopLines() if i == 1 else None
            for n, line in enumerate(_page_lines(page), 1):
                ctx.add(top.zone(line) if top else "body", line, page=i, line=n)
        for el in doc.iter():  # annotations and attachments are left out; say so only if present
            if local(el.tag) == "Attachments" and el.text:
                ctx.problem("unsupported", f"{ctx.where()}: OFD attachments are not inspected")
                break
