"""OCR with Tesseract (Debian's tesseract-ocr with chi_sim and eng), run as a
child process on a PNG given on stdin: no models are fetched, nothing is
written to disk, and the child dies with the worker. One page at a time,
charged to the file's OCR budget (pages, seconds)."""
from __future__ import annotations

import ctypes
import functools
import io
import os
import re
import shutil
import signal
import subprocess
import time
from typing import Any

from .extractors.base import Ctx, Incomplete, TopLines

DPI = 300          # what a PDF page is rendered at for OCR, and what Tesseract is told of an image
MIN_SIDE = 1200    # a small screenshot is enlarged to this: Tesseract wants x-heights of 20 px or more


@functools.lru_cache(maxsize=4)
def missing(languages: str) -> str | None:
    """Why OCR cannot run here (no tesseract, a language not installed), or None."""
    exe = shutil.which("tesseract")
    if exe is None:
        return "OCR is not available: the tesseract program is not installed (Debian: tesseract-ocr)"
    try:
        out = subprocess.run([exe, "--list-langs"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return f"OCR is not available: tesseract does not run ({exc})"
    have = {line.strip() for line in out.splitlines()[1:]}
    lacking = [lang for lang in languages.split("+") if lang not in have]
    if lacking:
        return (f"OCR is not available: tesseract has no {', '.join(lacking)} "
                f"(Debian: tesseract-ocr-{lacking[0].replace('_', '-')})")
    return None


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """A worker killed for its time budget must not leave Tesseract running."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def recognise(png: bytes, ctx: Ctx, what: str, languages: str | None = None, psm: int = 3, page: bool = True) -> str:
    """The text Tesseract reads on one image, charged to the file's budget: past
    ocr_max_pages (page=False: a second look at part of a page already counted)
    or ocr_timeout_s it raises limit_exceeded."""
    lim, budget = ctx.limits, ctx.budget
    if page and budget.ocr_pages >= lim.ocr_max_pages:
        raise Incomplete("limit_exceeded", f"{what}: more than ocr_max_pages={lim.ocr_max_pages} pages to OCR")
    left = lim.ocr_timeout_s - budget.ocr_seconds
    if left <= 0:
        raise Incomplete("limit_exceeded", f"{what}: OCR budget ocr_timeout_s={lim.ocr_timeout_s:g} spent")
    budget.ocr_pages += int(page)
    start = time.monotonic()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "OMP_THREAD_LIMIT": "1", "LC_ALL": "C"}
    try:
        run = subprocess.run(["tesseract", "stdin", "stdout", "-l", languages or lim.ocr_languages,
                              "--dpi", str(DPI), "--psm", str(psm)],
                             input=png, capture_output=True, timeout=left, env=env, preexec_fn=_die_with_parent)
    except subprocess.TimeoutExpired:
        raise Incomplete("limit_exceeded", f"{what}: OCR not done within ocr_timeout_s={lim.ocr_timeout_s:g}") from None
    except OSError as exc:
        raise Incomplete("unsupported", f"{what}: tesseract could not run: {exc}") from None
    finally:
        budget.ocr_seconds += time.monotonic() - start
    if run.returncode != 0:
        err = run.stderr.decode("utf-8", "replace").strip().splitlines()
        raise Incomplete("corrupt", f"{what}: OCR failed: {(err or ['exit %d' % run.returncode])[-1][:200]}")
    return run.stdout.decode("utf-8", "replace")


TOP_SHARE = 0.25   # the 版头, where a marking stands
BAND_WIDTH = 1000  # the top band is read at this width: a page-wide band at about 120 dpi (measured best)


def read_page(img: Any, ctx: Ctx, what: str, first: bool) -> str:
    """The OCR text of one page image. On the first page the top quarter is read
    once more with the Chinese models alone: with English loaded too, Tesseract
    takes a large 机密★1年 heading for Latin letters ("ALE & 1 FE"). Lines that
    second look adds come first, so they count as the top of the page."""
    text = recognise(prepare(img), ctx, what)
    if not first:
        return text
    cjk = "+".join(lang for lang in ctx.limits.ocr_languages.split("+") if lang not in ("eng", "osd"))
    if not cjk:
        return text
    band = img.crop((0, 0, img.width, max(1, int(img.height * TOP_SHARE))))
    f = BAND_WIDTH / max(1, band.width)  # a heading's glyphs at the size Tesseract reads best
    band = band.resize((BAND_WIDTH, max(1, int(band.height * f))))
    seen = {line.strip() for line in text.splitlines()}
    extra = [line for line in recognise(prepare(band, enlarge=False), ctx, what, cjk, psm=6, page=False).splitlines()
             if line.strip() and line.strip() not in seen]
    return "\n".join(extra + [text])


def prepare(img: Any, enlarge: bool = True) -> bytes:
    """A Pillow image as the PNG Tesseract reads best: grey, small ones enlarged."""
    from PIL import Image
    img = img.convert("L")
    if enlarge and max(img.size) < MIN_SIDE:
        f = MIN_SIDE / max(1, max(img.size))
        img = img.resize((max(1, int(img.width * f)), max(1, int(img.height * f))), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    img.save(out, "PNG", compress_level=1)
    return out.getvalue()


# Tesseract has no glyph for ★: it reads a CJK character or a symbol in its
# place ("机密广1年", "绝密文启用前"), or drops it. In OCR text, one character
# between a level word and a secrecy period is taken for the star.
_STAR_READ = re.compile(r"^(\W{0,3})(绝密|机密|秘密|核心商密|普通商密)\s*([^\s\d★☆*])?\s*"
                        r"(?=(?:\d{1,3}\s*(?:年|个月|月)|长期|启用前)\W{0,3}$)")


def repair_star(line: str) -> str:
    """`机密广1年` → `机密★1年`; lines that are not a level word and a period stay as they are."""
    return _STAR_READ.sub(lambda m: f"{m.group(1)}{m.group(2)}★", line, count=1)


def emit(text: str, ctx: Ctx, top: TopLines | None, page: int) -> None:
    """OCR lines as chunks: the first ones of the first page are first_page_top."""
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if line:
            line = repair_star(line)
            ctx.add(top.zone(line) if top else "body", line, page=page, line=n, ocr=True)
