"""The traceable watermark: user, host, time and job id, light and diagonal on every
page of a job's PDF, as vector text in a form XObject (pikepdf) — the pages are never
rasterised, so the document keeps its text and the stamp can be read back from it.

The stamp is drawn in the PDF's built-in Helvetica, so it carries Latin-1 text only;
other characters (a Chinese user name) are written as their code points (U+5F20),
which still names the user unambiguously.
"""
from __future__ import annotations

import io
import math
import os
import re
from dataclasses import dataclass

import pikepdf

EOF_MARK = b"%%EOF"
GRAY = 0.55        # light enough to read the page through, dark enough for a photocopier
OPACITY = 0.35
CHAR_EM = 0.62     # Helvetica's advance width per em, generous: enough to centre the line


@dataclass(frozen=True)
class Stamp:
    user: str
    host: str
    time: str      # UTC, ISO 8601
    job: str       # the CUPS job id

    def text(self) -> str:
        return f"baomi {self.user} @ {self.host} {self.time} job {self.job}"


class NotPdf(ValueError):
    """The data holds no PDF the watermark could go on."""


def latin1(text: str) -> str:
    return "".join(c if ord(c) < 256 else f"U+{ord(c):04X}" for c in text)


def _pdf_string(text: str) -> bytes:
    raw = latin1(text).encode("latin-1")
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def _content(text: str, w: float, h: float) -> bytes:
    """Three diagonal lines across the page and one small straight line at its foot."""
    angle = math.atan2(h, w)
    c, s = math.cos(angle), math.sin(angle)
    diag = math.hypot(w, h)
    size = max(6.0, min(40.0, diag * 0.5 / (CHAR_EM * max(1, len(text)))))
    length = CHAR_EM * size * len(text)
    ops = [b"q /BaomiGS gs", f"{GRAY:.2f} g".encode(), b"BT", f"/BaomiF {size:.1f} Tf".encode()]
    for offset in (-diag / 7, 0.0, diag / 7):  # perpendicular to the diagonal
        cx, cy = w / 2 - s * offset, h / 2 + c * offset
        x, y = cx - c * length / 2, cy - s * length / 2
        ops.append(f"{c:.4f} {s:.4f} {-s:.4f} {c:.4f} {x:.2f} {y:.2f} Tm".encode())
        ops.append(_pdf_string(text) + b" Tj")
    ops += [b"ET", b"Q", b"q 0.5 g BT /BaomiF 7 Tf 1 0 0 1 18 10 Tm", _pdf_string(text) + b" Tj", b"ET Q"]
    return b"\n".join(ops)


def _form(pdf: pikepdf.Pdf, text: str, w: float, h: float) -> pikepdf.Object:
    font = pdf.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1,
                                                BaseFont=pikepdf.Name.Helvetica,
                                                Encoding=pikepdf.Name.WinAnsiEncoding))
    gs = pikepdf.Dictionary(Type=pikepdf.Name.ExtGState, ca=OPACITY, CA=OPACITY)
    form = pikepdf.Stream(pdf, _content(text, w, h))
    form.Type, form.Subtype = pikepdf.Name.XObject, pikepdf.Name.Form
    form.BBox = [0, 0, w, h]
    form.Resources = pikepdf.Dictionary(Font=pikepdf.Dictionary(BaomiF=font),
                                        ExtGState=pikepdf.Dictionary(BaomiGS=gs))
    return pdf.make_indirect(form)


_START = re.compile(rb"(?:^|(?<=[\r\n]))%PDF-")


def pdf_spans(data: bytes) -> list[tuple[int, int]]:
    """Where each PDF in the job's data starts and ends. cupsd runs a job's filters once per
    document and concatenates their output, so a job of two documents reaches the backend
    as two PDFs in a row, each perhaps in its own PJL wrapper, which stays as it was."""
    starts = [m.start() for m in _START.finditer(data)]
    if not starts or starts[0] > 4096:
        return []
    spans = []
    for i, start in enumerate(starts):
        limit = starts[i + 1] if i + 1 < len(starts) else len(data)
        end = data.rfind(EOF_MARK, start, limit)
        end = limit if end < 0 else end + len(EOF_MARK)
        while end < limit and data[end:end + 1] in (b"\r", b"\n"):
            end += 1
        spans.append((start, end))
    return spans


def _stamp_one(data: bytes, text: str) -> tuple[bytes, int]:
    try:
        with pikepdf.open(io.BytesIO(data)) as pdf:
            forms: dict[tuple[float, float], pikepdf.Object] = {}  # one form per page size
            for page in pdf.pages:
                box = page.trimbox
                w, h = float(box[2]) - float(box[0]), float(box[3]) - float(box[1])
                key = (round(w, 1), round(h, 1))
                if key not in forms:
                    forms[key] = _form(pdf, text, w, h)
                page.add_overlay(forms[key], pikepdf.Rectangle(*(float(v) for v in box)))
            out = io.BytesIO()
            pdf.save(out)
            return out.getvalue(), len(pdf.pages)
    except pikepdf.PdfError as exc:
        raise NotPdf(f"damaged PDF ({exc})") from None


def stamp_pdf(data: bytes, stamp: Stamp) -> tuple[bytes, int]:
    """The data with the stamp on every page of every PDF in it, and the page count. What
    surrounds the PDFs (a printer job language wrapper, as CUPS's PDF drivers send) is kept."""
    spans = pdf_spans(data)
    if not spans:
        raise NotPdf("no PDF header")
    parts, pages, pos = [], 0, 0
    for start, end in spans:
        stamped, n = _stamp_one(data[start:end], stamp.text())
        parts += [data[pos:start], stamped]
        pages, pos = pages + n, end
    parts.append(data[pos:])
    return b"".join(parts), pages


def page_count(data: bytes) -> int | None:
    """Pages of the PDFs in data (possibly PJL-wrapped); None when it holds no readable PDF."""
    total = 0
    for start, end in pdf_spans(data):
        try:
            with pikepdf.open(io.BytesIO(data[start:end])) as pdf:
                total += len(pdf.pages)
        except pikepdf.PdfError:
            return None
    return total or None


@dataclass(frozen=True)
class Stamped:
    path: str          # the stamped data, to print instead of the original
    pages: int
    converted: str     # "" or the type that was turned into PDF first


def stamp_file(data_path: str, stamp: Stamp, out_path: str, may_convert: bool) -> Stamped:
    """Stamp the job data at data_path into out_path. PDF (bare or PJL-wrapped) is stamped
    as it is; text and PostScript are first made PDF by CUPS's own filters when
    may_convert (the data is the document itself, on a queue without a driver, so the
    printer is sent PDF instead). NotPdf for anything else."""
    from .convert import PDF, sniff, to_pdf
    with open(data_path, "rb") as f:
        data = f.read()
    mime, converted = sniff(data[:4096]), ""
    if mime != PDF:
        if not may_convert or not mime:
            raise NotPdf(f"the job's data is {mime or 'not PDF, text or PostScript'}: it cannot carry the watermark")
        try:
            data, converted = to_pdf(data_path, mime), mime
        except RuntimeError as exc:
            raise NotPdf(str(exc)) from None
    out, pages = stamp_pdf(data, stamp)
    fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(out)
    return Stamped(out_path, pages, converted)
