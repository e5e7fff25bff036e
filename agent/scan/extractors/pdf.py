"""PDF: the text layer page by page with pdfium (fast, tolerant), the pages'
annotations (stamps, text boxes, form field values, comments), the Info
dictionary and XMP metadata with pypdf. Lines wrapped between two Chinese
characters are also joined, so a phrase broken by the layout still matches."""
from __future__ import annotations

import re

from .base import Ctx, Incomplete, TopLines

_CJK = "\u3400-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f"
_WRAP = re.compile(rf"(?<=[{_CJK}])\s*\n\s*(?=[{_CJK}])")
MAX_PAGES = 5000


TOP_SHARE = 0.25  # the 版头 of a GB/T 9704 page: where the marking stands, whatever the text order


def _lines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _top_region(page, textpage) -> set[str]:  # type: ignore[no-untyped-def]
    """The lines printed in the top quarter of the page. The order of a text layer
    is the order of drawing: a marking drawn last (a template's text box, a
    header) comes after the body, and the first lines alone would miss it."""
    width, height = page.get_size()
    text = textpage.get_text_bounded(left=0, bottom=height * (1 - TOP_SHARE), right=width, top=height)
    return {line.strip() for line in _lines(text).split("\n") if line.strip()}


def _images(page) -> list:  # type: ignore[no-untyped-def]
    import pypdfium2.raw as pdfium_c
    return list(page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_IMAGE,), max_depth=3))


def _drawn(page) -> bool:  # type: ignore[no-untyped-def]
    """Whether the page draws shapes: text turned into outlines (Ghostscript's
    -dNoOutputFonts, "convert text to curves" before printing) has no text layer and
    no picture, yet a reader sees every word of it."""
    import pypdfium2.raw as pdfium_c
    return next(iter(page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_PATH,), max_depth=3)), None) is not None


def _scan_dpi(images: list, default: float) -> float:
    """The resolution the page's pictures were scanned at: rendering at it (not
    above) gives Tesseract the scanner's own pixels, not a blurred enlargement."""
    best = 0.0
    for obj in images:
        try:
            px_w, _px_h = obj.get_px_size()
            left, _bottom, right, _top = obj.get_bounds()
        except Exception:  # an image object pdfium cannot measure: use the default
            continue
        if right > left:
            best = max(best, px_w / ((right - left) / 72))
    return min(max(best, 100.0), 400.0) if best else default


# standard stamps (ISO 32000-1, 12.5.6.12) that are markings, as Acrobat draws them
_STAMPS = {"TopSecret": "TOP SECRET", "Confidential": "CONFIDENTIAL"}


def _annot_string(annot, key: str) -> str:  # type: ignore[no-untyped-def]
    import ctypes

    import pypdfium2.raw as pdfium_c
    size = pdfium_c.FPDFAnnot_GetStringValue(annot, key.encode(), None, 0)
    if size <= 2:
        return ""
    buf = ctypes.create_string_buffer(size)
    pdfium_c.FPDFAnnot_GetStringValue(annot, key.encode(), ctypes.cast(buf, ctypes.POINTER(pdfium_c.FPDF_WCHAR)), size)
    return buf.raw[:size - 2].decode("utf-16-le", errors="replace")


def _annotations(page, ctx: Ctx, number: int) -> None:  # type: ignore[no-untyped-def]
    """Stamps, text boxes (FreeText), form field values and comments: a 机密 stamp put on
    a PDF with a reader's stamp tool is an annotation, not text of the page. A stamp or
    text box printed in the top quarter of page 1 stands where the marking stands; a
    stamp elsewhere is read as a page header is (a stamp is put there to mark the page),
    the rest as body."""
    import pypdfium2.raw as pdfium_c
    shown = {pdfium_c.FPDF_ANNOT_STAMP: "stamp", pdfium_c.FPDF_ANNOT_FREETEXT: "text_box"}
    height = page.get_size()[1]
    for i in range(pdfium_c.FPDFPage_GetAnnotCount(page.raw)):
        annot = pdfium_c.FPDFPage_GetAnnot(page.raw, i)
        if not annot:
            continue
        try:
            subtype = pdfium_c.FPDFAnnot_GetSubtype(annot)
            kind = shown.get(subtype, "field" if subtype == pdfium_c.FPDF_ANNOT_WIDGET else "comment")
            rect = pdfium_c.FS_RECTF()
            pdfium_c.FPDFAnnot_GetRect(annot, rect)
            top = number == 1 and kind in ("stamp", "text_box") and rect.top >= height * (1 - TOP_SHARE)
            texts = [_annot_string(annot, "V" if kind == "field" else "Contents")]
            if kind == "stamp":
                texts.append(_STAMPS.get(_annot_string(annot, "Name"), ""))
            for text in texts:
                for line in _lines(text).split("\n"):
                    if line.strip():
                        zone = "first_page_top" if top else "header" if kind == "stamp" else "body"
                        ctx.add(zone, line, page=number, annotation=kind)
        finally:
            pdfium_c.FPDFPage_CloseAnnot(annot)


class _PageOcr:
    """OCR of a PDF's pages without a text layer. Such a page is never counted as
    read without it: no OCR, or its budget spent, leaves the file uninspectable."""

    def __init__(self) -> None:
        self.stopped = False

    def page(self, page, dpi: float, ctx: Ctx, number: int) -> str:  # type: ignore[no-untyped-def]
        from .. import ocr
        if self.stopped:
            return ""
        lim = ctx.limits
        why = ocr.missing(lim.ocr_languages) if lim.ocr else "OCR is switched off ([scan] ocr = false)"
        try:
            if why:
                raise Incomplete("unsupported", f"{ctx.where()}: page {number} has no text layer; {why}")
            width, height = page.get_size()
            scale = min(dpi / 72, (lim.ocr_max_pixels / max(1.0, width * height)) ** 0.5)
            img = page.render(scale=scale, grayscale=True).to_pil()
            text = ocr.read_page(img, ctx, f"{ctx.where()} page {number}", number == 1)
            return "\n".join(ocr.repair_star(line) for line in text.splitlines())
        except Incomplete as exc:
            ctx.problem(exc.reason, exc.detail)
            self.stopped = True  # the rest would fail the same way
            return ""


def _metadata(data: bytes, ctx: Ctx) -> None:
    import io

    import pypdf
    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            return
        for key, value in (reader.metadata or {}).items():
            if isinstance(value, str) and value.strip():
                ctx.add("metadata", value, key=str(key).lstrip("/"))
        xmp = reader.xmp_metadata
        if xmp is not None:
            for el in xmp.rdf_root.getElementsByTagNameNS("*", "*"):
                if el.firstChild is not None and el.firstChild.nodeType == el.TEXT_NODE and el.localName:
                    text = el.firstChild.data
                    if text.strip():
                        ctx.add("metadata", text, key=f"xmp:{el.localName}")
    except Exception:  # metadata is a bonus; the text layer decides whether the file was inspected
        pass


def recover(data: bytes, ctx: Ctx) -> int:
    """What a repairing reader (pypdf, lenient: it rebuilds a broken cross-reference
    table from the objects themselves) still reads of a PDF that pdfium does not open,
    as `qpdf --repair` would give it back: its metadata and the text of its pages, the
    first lines of page 1 as first_page_top. The number of pages with text."""
    import io

    import pypdf
    _metadata(data, ctx)
    pages = 0
    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            return 0
        for i, page in enumerate(reader.pages[:MAX_PAGES]):
            text = page.extract_text() or ""
            top = TopLines() if i == 0 else None
            lines = [line for line in text.split("\n") if line.strip()]
            for ln, line in enumerate(lines, 1):
                ctx.add(top.zone(line) if top else "body", line, page=i + 1, line=ln, recovered=True)
            pages += bool(lines)
    except MemoryError:
        raise
    except Exception:   # as damaged as it looked: what was read so far counts
        pass
    return pages


def recovered(pages: int) -> str:
    """What a corrupt PDF's detail adds when recover() read some of it."""
    return f"; the text of {pages} page(s) recovered by a lenient reader" if pages else ""


def pdf(data: bytes, ctx: Ctx) -> None:
    import pypdfium2 as pdfium
    try:
        doc = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        msg = str(exc)
        if "password" in msg.lower() or "security" in msg.lower():
            raise Incomplete("encrypted", f"{ctx.where()}: PDF is password-protected") from None
        got = recover(data, ctx)
        raise Incomplete("corrupt", f"{ctx.where()}: PDF not readable: {msg}" + recovered(got)) from None
    ocr_state = _PageOcr()
    try:
        _metadata(data, ctx)
        n = len(doc)
        for i in range(min(n, MAX_PAGES)):
            page = doc[i]
            top_region: set[str] = set()
            scanned = False
            try:
                tp = page.get_textpage()
                text = _lines(tp.get_text_range())
                if i == 0:
                    top_region = _top_region(page, tp)
                tp.close()
                if not text.strip():
                    images = _images(page)
                    if images:  # a scanned page: its text is in the picture
                        text, scanned = ocr_state.page(page, _scan_dpi(images, 300.0), ctx, i + 1), True
                    elif _drawn(page):  # words drawn as outlines: read as a reader sees them
                        text, scanned = ocr_state.page(page, 300.0, ctx, i + 1), True
                _annotations(page, ctx, i + 1)
            finally:
                page.close()
            top = TopLines() if i == 0 else None
            body: list[str] = []
            for ln, line in enumerate(text.split("\n"), 1):
                if line.strip():
                    zone = top.zone(line) if top else "body"
                    if zone == "body":
                        body.append(line)  # past the first lines: joined below, wherever it is printed
                        if line.strip() in top_region:
                            zone = "first_page_top"
                    ctx.add(zone, line, page=i + 1, line=ln, **({"ocr": True} if scanned else {}))
            # the body with its CJK line wraps undone, for phrases split by the layout
            # (first-page-top lines stay out: they are not repeated in the body)
            flowed = "\n".join(body)
            joined = _WRAP.sub("", flowed)
            if joined != flowed:
                ctx.add("body", joined.replace("\n", " "), page=i + 1)
        if n > MAX_PAGES:
            raise Incomplete("limit_exceeded", f"{ctx.where()}: {n} pages, only the first {MAX_PAGES} read")
    finally:
        doc.close()
