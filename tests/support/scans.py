"""Scanned pages, photos and screenshots made for real: Pillow draws Chinese text
with a CJK font installed from Debian (fonts-wqy-microhei, fonts-noto-cjk), at
a given resolution, slightly rotated and with scanner noise if asked. Tests
that need them skip, saying what is missing."""
from __future__ import annotations

import io
import random
import shutil
import subprocess
from pathlib import Path

import pytest

FONTS = ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
         "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")


def cjk_font() -> str:
    for f in FONTS:
        if Path(f).exists():
            return f
    pytest.skip("needs a CJK font (Debian: fonts-wqy-microhei or fonts-noto-cjk) to draw Chinese pages")


def need_ocr() -> None:
    from baomi.agent.scan import ocr
    why = ocr.missing("chi_sim+eng")
    if why:
        pytest.skip(f"needs Tesseract: {why}")


def page(lines: list[str], dpi: int = 300, rotate: float = 0.0, noise: float = 0.0, seed: int = 1,
         size_pt: float = 16.0, first_pt: float = 22.0):
    """An A4 page (a Pillow image) with lines from the top left, as GB/T 9704 sets a
    marking: the first line larger. noise: share of pixels flipped to grey specks."""
    from PIL import Image, ImageDraw, ImageFont
    w, h = int(8.27 * dpi), int(11.69 * dpi)
    img = Image.new("L", (w, h), 255)
    draw = ImageDraw.Draw(img)
    x, y = int(1.1 * dpi), int(1.0 * dpi)
    for i, line in enumerate(lines):
        pt = first_pt if i == 0 else size_pt
        font = ImageFont.truetype(cjk_font(), int(pt * dpi / 72))
        draw.text((x, y), line, font=font, fill=0)
        y += int(pt * dpi / 72 * 1.8)
    if rotate:
        img = img.rotate(rotate, fillcolor=255, resample=Image.Resampling.BICUBIC)
    if noise:
        rnd = random.Random(seed)
        px = img.load()
        for _ in range(int(w * h * noise)):
            px[rnd.randrange(w), rnd.randrange(h)] = rnd.choice((0, 96, 160))
    return img


def photo(width: int = 1600, height: int = 1200, seed: int = 7):
    """A holiday photo without text: a sky gradient, a sea, a sun and grain."""
    from PIL import Image, ImageDraw
    rnd = random.Random(seed)
    img = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(img)
    for yy in range(height):
        t = yy / height
        colour = (int(90 + 120 * t), int(150 + 60 * t), 235) if t < 0.55 else (20, int(90 + 60 * t), int(140 + 40 * t))
        draw.line([(0, yy), (width, yy)], fill=colour)
    draw.ellipse([width * 0.7, height * 0.1, width * 0.82, height * 0.26], fill=(255, 220, 120))
    px = img.load()
    for _ in range(width * height // 50):
        x, y = rnd.randrange(width), rnd.randrange(height)
        r, g, b = px[x, y]
        d = rnd.randint(-25, 25)
        px[x, y] = (max(0, min(255, r + d)), max(0, min(255, g + d)), max(0, min(255, b + d)))
    return img


def encode(img, fmt: str, **opts) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **opts)
    return out.getvalue()


def pdftoppm(pdf: bytes, dpi: int) -> bytes | None:
    """Page 1 of a PDF rasterised by poppler's pdftoppm (grey PNG), or None without it."""
    import tempfile
    if shutil.which("pdftoppm") is None:
        return None
    with tempfile.TemporaryDirectory(prefix="baomi-ppm-") as tmp:
        src = Path(tmp) / "in.pdf"
        src.write_bytes(pdf)
        subprocess.run(["pdftoppm", "-r", str(dpi), "-gray", "-png", "-f", "1", "-l", "1", "-singlefile", str(src),
                        f"{tmp}/page"], capture_output=True, timeout=120, check=True)
        return (Path(tmp) / "page.png").read_bytes()
