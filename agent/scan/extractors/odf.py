"""OpenDocument (LibreOffice, WPS on Kylin/UOS): odt/ods/odp packages and the
flat fodt/fods/fodp XML files. content.xml holds the body (paragraphs, tables,
frames and text boxes, notes, comments, a sheet's shapes), styles.xml the master pages with the
page headers and footers, meta.xml the properties (title, subject, keywords
and user-defined properties, which carry labels), "Object N/content.xml" the
charts and spreadsheets embedded in the document. Pictures are
opened only for OCR when the text carries no marking, and never make the
document uninspectable."""
from __future__ import annotations

import re
from typing import Iterator
from xml.etree.ElementTree import Element

from .base import Ctx, Incomplete, TopLines
from .xmlutil import cells_to_chunks, local, note_pictures, open_zip, optional_xml, parse, required_xml

PREFIX = "application/vnd.oasis.opendocument."
FLAT_SUFFIX = "-flat-xml"

# children of a paragraph that hold paragraphs of their own: their text is not
# part of the paragraph's line and is read after it
_NESTED = {"note", "annotation", "frame", "custom-shape", "text-box", "rect", "ellipse", "polygon", "g"}
_SKIP = {"note-citation", "annotation-end", "bookmark", "bookmark-start", "bookmark-end",
         "soft-page-break", "reference-mark", "change", "change-start", "change-end", "tracked-changes"}
_HEADER_TAGS = {"header": "header", "header-left": "header", "header-first": "header",
                "footer": "footer", "footer-left": "footer", "footer-first": "footer"}
_OBJECT = re.compile(r"(?:Object [^/]+/)+content\.xml")
MAX_REPEAT = 1000  # repeated empty rows/columns of a spreadsheet are counted, never expanded beyond this


def _para_text(p: Element, nested: list[Element]) -> str:
    """The line(s) of one text:p / text:h; containers of other paragraphs go to nested."""
    out: list[str] = [p.text or ""]

    def walk(el: Element) -> None:
        for child in el:
            tag = local(child.tag)
            if tag in _NESTED:
                nested.append(child)
            elif tag == "s":
                out.append(" " * min(int(child.get(_attr(child, "c"), "1") or 1), 64))
            elif tag == "tab":
                out.append("\t")
            elif tag == "line-break":
                out.append("\n")
            elif tag not in _SKIP:
                out.append(child.text or "")
                walk(child)
            out.append(child.tail or "")
    walk(p)
    return "".join(out)


def _attr(el: Element, name: str) -> str:
    """The attribute of el whose local name is name (any namespace), as a key for el.get."""
    return next((k for k in el.attrib if local(k) == name), name)


def _get(el: Element, name: str, default: str = "") -> str:
    return el.get(_attr(el, name), default)


def _blocks(el: Element, in_table: bool = False, aside: bool = False) -> Iterator[tuple[str, bool, bool]]:
    """(line text, in a table, aside) for every paragraph under el in reading order;
    aside: a note or comment (always body). Frames and text boxes anchored in a
    paragraph come right after it, as in Word."""
    for child in el:
        tag = local(child.tag)
        if tag in ("p", "h"):
            nested: list[Element] = []
            text = _para_text(child, nested)
            for line in text.split("\n"):
                if line.strip():
                    yield line, in_table, aside
            for n in nested:
                yield from _blocks(n, in_table, aside or local(n.tag) in ("note", "annotation"))
        elif tag in ("table", "table-row", "table-cell"):
            yield from _blocks(child, True, aside)
        elif tag in ("annotation", "note", "notes"):
            yield from _blocks(child, in_table, True)
        elif tag not in _SKIP:
            yield from _blocks(child, in_table, aside)


def _story(root: Element, ctx: Ctx) -> None:
    """A text document's body: the first paragraphs outside tables, notes and
    comments are first_page_top, as in docx."""
    top = TopLines()
    for n, (line, in_table, aside) in enumerate(_blocks(root), 1):
        zone = "body" if in_table or aside else top.zone(line)
        loc: dict[str, object] = {"paragraph": n}
        if in_table:
            loc["table"] = True
        ctx.add(zone, line, **loc)


_DRAWN = {"frame", "custom-shape", "rect", "ellipse", "polygon", "g", "text-box"}


def _master_pages(styles: Element, ctx: Ctx, part: str) -> None:
    """Page headers and footers; a spreadsheet's left/centre/right regions are read apart;
    what a presentation's master page draws (a text box stamped on every slide) counts
    as its header."""
    for el in styles.iter():
        tag = local(el.tag)
        zone = _HEADER_TAGS.get(tag)
        if zone is not None:
            for n, (line, _t, _a) in enumerate(_blocks(el), 1):
                ctx.add(zone, line, part=part, paragraph=n)
        elif tag == "master-page":
            drawn = [child for child in el if local(child.tag) in _DRAWN]
            for n, (line, _t, _a) in enumerate((b for d in drawn for b in _blocks(d)), 1):
                ctx.add("header", line, part=part, paragraph=n, master=_get(el, "name"))


def _meta(meta: Element, ctx: Ctx, part: str) -> None:
    """meta.xml: title, subject, keywords, description, creator..., and user-defined properties."""
    for el in meta.iter():
        tag = local(el.tag)
        if tag == "user-defined":
            name = _get(el, "name")
            if name and (el.text or "").strip():
                ctx.add("metadata", el.text or "", key=name, part=part)
        elif len(el) == 0 and (el.text or "").strip() and tag not in ("generator", "editing-cycles", "editing-duration"):
            ctx.add("metadata", el.text or "", key=tag, part=part)


def _col(i: int) -> str:
    s = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(65 + r) + s
    return s


def _repeat(el: Element, name: str) -> int:
    try:
        return max(1, min(int(_get(el, name, "1")), MAX_REPEAT))
    except ValueError:
        return 1


def _sheets(body: Element, ctx: Ctx) -> None:
    """A spreadsheet: each table:table a sheet; cells zoned like xlsx (a banner at the top of the first sheet)."""
    first = True
    for table in body.iter():
        if local(table.tag) != "table":
            continue
        name = _get(table, "name", "?")
        cells: list[tuple[int, str, str]] = []
        row_no = 0
        for row in table.iter():
            if local(row.tag) != "table-row":
                continue
            reps = _repeat(row, "number-rows-repeated")
            col = 0
            texts: list[tuple[int, str]] = []
            for cell in row:
                if local(cell.tag) not in ("table-cell", "covered-table-cell"):
                    continue
                span = _repeat(cell, "number-columns-repeated")
                lines = list(_blocks(cell))
                text = "\n".join(line for line, _t, aside in lines if not aside)
                if text.strip():
                    texts.append((col, text))
                for line, _t, aside in lines:   # a cell's comment is a text of its own, not part of the cell
                    if aside:
                        ctx.add("body", line, sheet=name, cell=f"{_col(col)}{row_no + 1}", part="annotation")
                col += span
            for r in range(reps if texts else 1):
                cells.extend((row_no + r + 1, f"{_col(c)}{row_no + r + 1}", t) for c, t in texts)
            row_no += reps
        cells_to_chunks(ctx, name, first, cells)
        first = False
        for shapes in (el for el in table if local(el.tag) == "shapes"):   # text boxes and shapes on the sheet
            for line, _t, _a in _blocks(shapes):
                ctx.add("body", line, sheet=name, part="shapes")


def _slides(body: Element, ctx: Ctx) -> None:
    """A presentation: each draw:page a slide; the first slide's first texts are first_page_top."""
    for el in body:   # the header, footer and date text the slides print (Impress's Header and Footer dialog)
        zone = {"header-decl": "header", "footer-decl": "footer", "date-time-decl": "footer"}.get(local(el.tag))
        if zone and "".join(el.itertext()).strip():
            ctx.add(zone, "".join(el.itertext()), name=_get(el, "name"))
    pages = [el for el in body.iter() if local(el.tag) == "page"]
    for i, page in enumerate(pages, 1):
        top = TopLines() if i == 1 else None
        for line, _t, aside in _blocks(page):
            zone = top.zone(line) if top and not aside else "body"
            ctx.add(zone, line, slide=i)


def _content(root: Element, ctx: Ctx) -> None:
    """office:body of a content.xml (or of a flat file): text, spreadsheet or presentation."""
    body = next((el for el in root if local(el.tag) == "body"), None)
    if body is None:
        raise Incomplete("corrupt", f"{ctx.where()}: OpenDocument without office:body")
    for kind in body:
        tag = local(kind.tag)
        if tag == "spreadsheet":
            _sheets(kind, ctx)
        elif tag in ("presentation", "drawing"):
            _slides(kind, ctx)
        else:  # text, and anything else that holds paragraphs (chart, image)
            _story(kind, ctx)


def odf(data: bytes, ctx: Ctx) -> None:
    """An OpenDocument package (zip)."""
    zf = open_zip(data, ctx)
    manifest = optional_xml(zf, "META-INF/manifest.xml", ctx)
    if manifest is not None and any(local(el.tag) == "encryption-data" for el in manifest.iter()):
        raise Incomplete("encrypted", f"{ctx.where()}: password-protected OpenDocument")
    meta = optional_xml(zf, "meta.xml", ctx)
    if meta is not None:
        _meta(meta, ctx, "meta.xml")
    note_pictures(zf, ctx, ("Pictures/",))  # not Thumbnails/: a picture of the first page, already read as text
    _content(required_xml(zf, "content.xml", ctx), ctx)
    styles = optional_xml(zf, "styles.xml", ctx)
    if styles is not None:
        _master_pages(styles, ctx, "styles.xml")
    _objects(zf, ctx)


def _objects(zf, ctx: Ctx) -> None:  # type: ignore[no-untyped-def]
    """Embedded objects ("Object 1/content.xml": a chart, a spreadsheet or a formula
    inserted into the document), which the document shows in place: body."""
    for name in sorted(n for n in zf.namelist() if _OBJECT.fullmatch(n)):
        root = optional_xml(zf, name, ctx)
        body = next((el for el in root if local(el.tag) == "body"), None) if root is not None else None
        if body is not None:
            for n, (line, _t, _a) in enumerate(_blocks(body), 1):
                ctx.add("body", line, part=name, paragraph=n)


def flat(data: bytes, ctx: Ctx) -> None:
    """A flat OpenDocument file (fodt/fods/fodp): meta, master styles and body in one XML."""
    root = parse(data, ctx.where())
    for child in root:
        tag = local(child.tag)
        if tag == "meta":
            _meta(child, ctx, "meta")
        elif tag == "master-styles":
            _master_pages(child, ctx, "master-styles")
    _content(root, ctx)
