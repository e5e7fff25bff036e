"""Office Open XML: docx (body, tables, text boxes, headers, footers, notes,
comments, imported chunks), xlsx (shared and inline strings, sheets in workbook
order, header and footer, comments, text boxes and shapes), pptx (slides, notes,
masters, comments), in all three charts, SmartArt and embedded objects (an Excel
table inserted into Word), and the properties in docProps/ and
docMetadata/LabelInfo.xml. A paragraph's text is joined across its runs."""
from __future__ import annotations

import posixpath
import re
import zipfile
from typing import Iterator
from xml.etree.ElementTree import Element

from .base import Ctx, Incomplete, TopLines
from .xmlutil import (cells_to_chunks, header_footer_pieces, local, note_pictures, open_zip, optional_xml, read_member,
                      read_xml, required_xml)


def properties(zf: zipfile.ZipFile, ctx: Ctx) -> None:
    """docProps/core.xml, app.xml, custom.xml and docMetadata/LabelInfo.xml → metadata
    chunks; and the pictures in word/, xl/ and ppt/media for OCR."""
    note_pictures(zf, ctx, ("word/media/", "xl/media/", "ppt/media/"))
    for part in ("docProps/core.xml", "docProps/app.xml"):
        root = optional_xml(zf, part, ctx)
        if root is not None:
            for el in root:
                if el.text and el.text.strip() and len(el) == 0:
                    ctx.add("metadata", el.text, key=local(el.tag), part=part)
    root = optional_xml(zf, "docProps/custom.xml", ctx)
    if root is not None:
        for prop in root:
            name = prop.get("name")
            value = "".join(prop.itertext())
            if name and value.strip():
                ctx.add("metadata", value, key=name, part="docProps/custom.xml")
    root = optional_xml(zf, "docMetadata/LabelInfo.xml", ctx)
    if root is not None:
        for lab in root.iter():
            if local(lab.tag) == "label" and lab.get("id") and lab.get("enabled", "1") in ("1", "true"):
                ctx.add("metadata", lab.get("id", "").strip("{}"), key="LabelInfo", part="docMetadata/LabelInfo.xml")


# parts of any of the three whose text a reader sees: charts (titles, series and
# category names), SmartArt, a sheet's text boxes and shapes, comments of sheets and
# slides (a docx's own comments are read with its stories)
_SHOWN_PARTS = re.compile(r"(?:word|xl|ppt)/(?:charts/chart\d+|diagrams/data\d+|drawings/drawing\d+)\.xml"
                          r"|xl/comments\d*\.xml|xl/threadedComments/threadedComment\d+\.xml"
                          r"|ppt/comments/comment\d+\.xml")
_EMBEDDED = re.compile(r"(?:word|xl|ppt)/embeddings/[^/]+")


def _shown_texts(root: Element) -> Iterator[str]:
    """Paragraphs (DrawingML a:p), sheet comments (their <t> runs), threaded and slide
    comments (<text>), and a chart's cached category and series names (c:strCache)."""
    for el in root.iter():
        tag = local(el.tag)
        if tag == "p" or tag == "comment":
            yield _t_text(el)
        elif tag == "text" and el.text:
            yield el.text
        elif tag == "strCache":
            for v in el.iter():
                if local(v.tag) == "v" and v.text:
                    yield v.text


def shown_parts(zf: zipfile.ZipFile, ctx: Ctx) -> None:
    """Charts, SmartArt, drawings and comments as body; embedded objects as members."""
    for info in zf.infolist():
        name = info.filename
        if _SHOWN_PARTS.fullmatch(name):
            root = optional_xml(zf, name, ctx)
            if root is not None:
                for n, text in enumerate(_shown_texts(root), 1):
                    ctx.add("body", text, part=name, paragraph=n)
        elif _EMBEDDED.fullmatch(name) and not info.is_dir():
            _member(zf, info, ctx)


def _member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, ctx: Ctx) -> None:
    """A part that is a file of its own (an embedded object, an imported chunk), read as a member."""
    try:
        body = read_member(zf, info, ctx)
    except Incomplete as exc:
        ctx.problem(exc.reason, exc.detail)
        return
    ctx.descend(body, info.filename)


def _alt_chunks(zf: zipfile.ZipFile, ctx: Ctx) -> None:
    """w:altChunk: HTML, MHT, RTF or text imported into a document, which Word shows in
    place but keeps in a part of its own."""
    root = optional_xml(zf, "word/_rels/document.xml.rels", ctx)
    for rel in root if root is not None else ():
        if rel.get("Type", "").endswith("/aFChunk"):
            target = posixpath.normpath(posixpath.join("word", rel.get("Target", "")))
            try:
                info = zf.getinfo(target)
            except KeyError:
                continue   # a relationship to a part the package lacks
            _member(zf, info, ctx)


# -- docx -------------------------------------------------------------------

def _para_text(p: Element) -> str:
    """Text of one w:p, joined across runs, leaving out nested paragraphs (text boxes)."""
    out: list[str] = []

    def walk(el: Element, fallback: bool = False) -> None:
        for child in el:
            tag = local(child.tag)
            if tag == "p" or tag == "txbxContent":
                continue
            if tag == "textpath":
                # WordArt and a watermark (Design > Watermark: 机密, CONFIDENTIAL) keep their
                # text in VML's v:textpath string=, a line of its own; once, not again
                # from the VML copy of a DrawingML shape
                text = child.get("string", "")
                if text and not fallback:
                    out.append(f"\n{text}\n")
            elif tag == "t":
                out.append(child.text or "")
            elif tag == "tab":
                out.append("\t")
            elif tag == "sym":  # Insert > Symbol: a Wingdings ★ is w:char="F0AB" (normalised later)
                code = next((v for k, v in child.attrib.items() if local(k) == "char"), "")
                try:
                    out.append(chr(int(code, 16)))
                except ValueError:
                    pass
            elif tag in ("br", "cr"):
                out.append("\n")
            else:
                walk(child, fallback or tag == "Fallback")
    walk(p)
    return "".join(out)


def _paragraphs(el: Element, cell: Element | None = None) -> Iterator[tuple[Element, Element | None]]:
    """Every w:p in document order, with the table cell (w:tc) it sits in, if any;
    text-box paragraphs come right after the paragraph that anchors them."""
    for child in el:
        tag = local(child.tag)
        if tag == "p":
            yield child, cell
            for nested in _text_boxes(child):
                yield from _paragraphs(nested, cell)
        elif tag == "tc":
            yield from _paragraphs(child, child)
        elif tag == "txbxContent":
            continue
        else:
            yield from _paragraphs(child, cell)


def _text_boxes(el: Element) -> Iterator[Element]:
    """The w:txbxContent under el, outermost only, leaving out mc:Fallback: Word
    stores each text box twice (DrawingML and its VML fallback)."""
    for child in el:
        tag = local(child.tag)
        if tag == "txbxContent":
            yield child
        elif tag != "Fallback":
            yield from _text_boxes(child)


def _cell_text(tc: Element) -> str:
    return "".join(_para_text(p) for p in tc.iter() if local(p.tag) == "p").strip()


def _header_table_cells(root: Element) -> set[int]:
    """The cells of a 公文 header table (份号 | 密级 | 紧急程度) opening the document:
    they stand where the marking stands, so they are first_page_top. A table is
    a header table when it comes before any text and is one row, or when its
    leading rows hold one or two texts (like a spreadsheet banner); a register
    (a pair of cells repeated row after row, or a wider header row) is not."""
    body = next((c for c in root if local(c.tag) == "body"), root)
    for block in body:
        tag = local(block.tag)
        if tag == "p" and _para_text(block).strip():
            return set()
        if tag == "tbl":
            rows = [[tc for tc in tr if local(tc.tag) == "tc" and _cell_text(tc)]
                    for tr in block if local(tr.tag) == "tr"]
            rows = [r for r in rows if r]
            if len(rows) == 1:
                return {id(tc) for tc in rows[0]}
            top: set[int] = set()
            for i, row in enumerate(rows[:3]):
                nxt = len(rows[i + 1]) if i + 1 < len(rows) else 0
                if len(row) > 2 or (len(row) == 2 and nxt == 2):
                    break
                top.update(id(tc) for tc in row)
            return top
    return set()


def _story(root: Element, ctx: Ctx, zone: str | None, part: str) -> None:
    top = TopLines() if zone is None else None
    header_cells = _header_table_cells(root) if zone is None else set()
    n = 0
    seen: set[int] = set()
    for p, cell in _paragraphs(root):
        if id(p) in seen:
            continue
        seen.add(id(p))
        for line in _para_text(p).split("\n"):
            if not line.strip():
                continue
            n += 1
            if top is not None:
                z = "body" if cell is not None and id(cell) not in header_cells else top.zone(line)
            else:
                z = zone
            loc = {"paragraph": n} if zone is None else {"part": part, "paragraph": n}
            if cell is not None:
                loc["table"] = True
            ctx.add(z, line, **loc)  # type: ignore[arg-type]


def docx(data: bytes, ctx: Ctx) -> None:
    zf = open_zip(data, ctx)
    properties(zf, ctx)
    body = required_xml(zf, "word/document.xml", ctx)
    _story(body, ctx, None, "word/document.xml")
    for name in sorted(zf.namelist()):
        m = re.fullmatch(r"word/(header|footer|footnotes|endnotes|comments)\d*\.xml", name)
        if m:
            root = optional_xml(zf, name, ctx)
            if root is not None:
                kind = m.group(1)
                _story(root, ctx, kind if kind in ("header", "footer") else "body", name)
    _alt_chunks(zf, ctx)
    shown_parts(zf, ctx)


# -- xlsx -------------------------------------------------------------------

def part_rels(zf: zipfile.ZipFile, part: str, ctx: Ctx) -> dict[str, str]:
    folder, name = posixpath.split(part)
    root = optional_xml(zf, f"{folder}/_rels/{name}.rels", ctx)
    out = {}
    if root is not None:
        for rel in root:
            target = rel.get("Target", "")
            out[rel.get("Id", "")] = target.lstrip("/") if target.startswith("/") else posixpath.normpath(
                posixpath.join(folder, target))
    return out


def _t_text(el: Element) -> str:
    """The text of every <t> element under el (xlsx strings, pptx paragraphs)."""
    return "".join(t.text or "" for t in el.iter() if isinstance(t.tag, str) and (t.tag == "t" or t.tag.endswith("}t")))


def _rel_id(el: Element) -> str:
    """The r:id attribute of el (any namespace prefix), or ""."""
    return next((v for k, v in el.attrib.items() if local(k) == "id"), "")


_ROW = re.compile(r"[A-Z]+(\d+)")
HEADERS_FOOTERS = ("oddHeader", "evenHeader", "firstHeader", "oddFooter", "evenFooter", "firstFooter")


def xlsx(data: bytes, ctx: Ctx) -> None:
    zf = open_zip(data, ctx)
    properties(zf, ctx)
    shared: list[str] = []
    sst = read_xml(zf, "xl/sharedStrings.xml", ctx)
    if sst is not None:
        for si in sst:
            shared.append(_t_text(si))
    wb = required_xml(zf, "xl/workbook.xml", ctx)
    rels = part_rels(zf, "xl/workbook.xml", ctx)
    sheets = [(s.get("name", "?"), rels.get(_rel_id(s), "")) for s in wb.iter() if local(s.tag) == "sheet"]
    for i, (name, part) in enumerate(sheets):
        root = optional_xml(zf, part, ctx) if part else None
        if root is None:
            continue
        # the sheet's own namespace (transitional or strict OOXML), so that ElementTree
        # finds the cells in C instead of every element passing through local()
        ns = root.tag[:root.tag.index("}") + 1] if root.tag.startswith("{") else ""
        cells: list[tuple[int, str, str]] = []
        for c in root.iter(ns + "c"):
            ref, typ = c.get("r", ""), c.get("t")
            text = ""
            if typ == "s":
                try:
                    text = shared[int(c.findtext(ns + "v") or "")]
                except (ValueError, IndexError):
                    continue
            elif typ == "inlineStr":
                text = _t_text(c)
            elif typ == "str":
                text = c.findtext(ns + "v") or ""
            if text.strip():
                m = _ROW.match(ref)
                cells.append((int(m.group(1)) if m else len(cells) + 1, ref, text))
        cells_to_chunks(ctx, name, i == 0, cells)
        for block in root.iter(ns + "headerFooter"):
            for hf in block:
                tag = local(hf.tag)
                if tag in HEADERS_FOOTERS and hf.text:
                    for piece in header_footer_pieces(hf.text):
                        ctx.add("header" if "Header" in tag else "footer", piece, sheet=name, part=tag)
    shown_parts(zf, ctx)


# -- pptx -------------------------------------------------------------------

def _slide_no(name: str) -> int:
    m = re.search(r"(\d+)\.xml$", name)
    return int(m.group(1)) if m else 0


_MASTER = re.compile(r"ppt/(slideMasters/slideMaster|slideLayouts/slideLayout)\d+\.xml")


def _masters(zf: zipfile.ZipFile, ctx: Ctx) -> None:
    """Slide masters and layouts: text placed there (a 机密 text box, the footer)
    prints on every slide that uses them, as a page header does."""
    for name in sorted(n for n in zf.namelist() if _MASTER.fullmatch(n)):
        root = optional_xml(zf, name, ctx)
        if root is not None:
            for p in root.iter():
                if local(p.tag) == "p":
                    ctx.add("header", _t_text(p), part=name)


def pptx(data: bytes, ctx: Ctx) -> None:
    zf = open_zip(data, ctx)
    properties(zf, ctx)
    pres = required_xml(zf, "ppt/presentation.xml", ctx)
    rels = part_rels(zf, "ppt/presentation.xml", ctx)
    order = [rels.get(_rel_id(s)) for s in pres.iter() if local(s.tag) == "sldId"]
    slides = [s for s in order if s] or sorted((n for n in zf.namelist() if re.fullmatch(r"ppt/slides/slide\d+\.xml", n)),
                                               key=_slide_no)
    for i, part in enumerate(slides, 1):
        root = optional_xml(zf, part, ctx)
        if root is None:
            continue
        top = TopLines() if i == 1 else None
        for p in root.iter():
            if local(p.tag) == "p":
                text = _t_text(p)
                if text.strip():
                    ctx.add(top.zone(text) if top else "body", text, slide=i)
        notes = part_rels(zf, part, ctx)
        for target in notes.values():
            if "notesSlide" in target:
                nroot = optional_xml(zf, target, ctx)
                if nroot is not None:
                    for p in nroot.iter():
                        if local(p.tag) == "p":
                            ctx.add("body", _t_text(p),
                                    slide=i, part="notes")
    _masters(zf, ctx)
    shown_parts(zf, ctx)
