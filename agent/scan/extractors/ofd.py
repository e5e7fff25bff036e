"""OFD (GB/T 33190): a zip of XML. OFD.xml's DocInfo (title, author, keywords,
CustomDatas) is metadata; each page's Content.xml holds TextObjects whose
TextCode pieces are put back into lines by their position; attachments (附件, listed
in the document's Attachments part) are read as members of their own type."""
from __future__ import annotations

import posixpath
import zipfile

from .base import Ctx, Incomplete, TopLines
from .xmlutil import local, open_zip, optional_xml, read_member, read_xml, required_xml


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
            path = _resolve(base, loc)
            page = optional_xml(zf, names.get(path.lower(), path), ctx)
            if page is None:
                continue
            top = TopLines() if i == 1 else None
            for n, line in enumerate(_page_lines(page), 1):
                ctx.add(top.zone(line) if top else "body", line, page=i, line=n)
        for el in doc.iter():
            if local(el.tag) == "Attachments" and el.text and el.text.strip():
                _attachments(zf, names, _resolve(base, el.text.strip()), ctx)


def _resolve(base: str, loc: str) -> str:
    """A location in the package: absolute from its root, else relative to `base`."""
    return loc.lstrip("/") if loc.startswith("/") else posixpath.normpath(posixpath.join(base, loc))


def _attachments(zf: zipfile.ZipFile, names: dict[str, str], part: str, ctx: Ctx) -> None:
    """The files attached to the document, each read as a member named by its
    attachment name (附件) or, without one, by its location."""
    listing = read_xml(zf, names.get(part.lower(), part), ctx)
    if listing is None:
        ctx.problem("corrupt", f"{ctx.where()}: {part} (the attachment list) missing")
        return
    for att in listing.iter():
        if local(att.tag) != "Attachment":
            continue
        loc = next((el.text.strip() for el in att if local(el.tag) == "FileLoc" and el.text), "")
        path = _resolve(posixpath.dirname(part), loc)
        try:
            info = zf.getinfo(names.get(path.lower(), path))
        except KeyError:
            ctx.problem("corrupt", f"{ctx.where()}: attachment {loc or att.get('Name', '?')} missing")
            continue
        try:
            body = read_member(zf, info, ctx)
        except Incomplete as exc:
            ctx.problem(exc.reason, exc.detail)
            continue
        ctx.descend(body, att.get("Name") or posixpath.basename(path))
