"""Images (scans, phone photos, screenshots: PNG, JPEG, TIFF, BMP, GIF, WebP, HEIC
and whatever else Pillow decodes) read by OCR. The pixel limit is checked from the
header before anything is decoded; each frame of a multi-page TIFF or GIF is a
page. An image whose OCR finds no text is inspected and public; without
Tesseract it is unsupported, with the reason."""
from __future__ import annotations

import io

from .. import ocr
from .base import Ctx, Incomplete, TopLines


# the ISO base media brands of HEIF still images (phone photos: HEIC); AVIF is not read
HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1", b"hevc", b"hevx")


def is_heif(data: bytes) -> bool:
    return data[4:8] == b"ftyp" and data[8:12] in HEIF_BRANDS


def _heif_opener() -> bool:
    """Pillow reads HEIC once pillow-heif (libheif and its HEVC decoder, in the wheel)
    registers itself; loaded only for such a file, as most scans never meet one.
    False: not installed."""
    try:
        import pillow_heif
    except ImportError:   # an installation without it: the image is unsupported, as before
        return False
    pillow_heif.register_heif_opener()
    return True


def image(data: bytes, ctx: Ctx) -> None:
    lim = ctx.limits
    why = ocr.missing(lim.ocr_languages) if lim.ocr else "OCR is switched off ([scan] ocr = false)"
    if why:
        raise Incomplete("unsupported", f"{ctx.where()}: an image; {why}")
    from PIL import Image, UnidentifiedImageError
    Image.MAX_IMAGE_PIXELS = None  # our own limit below, from the header, before decoding
    heif = is_heif(data) and _heif_opener()
    try:
        img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        if heif:   # a HEIF header its own reader refuses: damaged (or a disguise), not an unknown kind
            raise Incomplete("corrupt", f"{ctx.where()}: damaged HEIF image") from None
        raise Incomplete("unsupported", f"{ctx.where()}: an image format Pillow cannot decode") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise Incomplete("corrupt", f"{ctx.where()}: damaged image: {exc}") from None
    pixels = img.width * img.height
    if pixels > lim.ocr_max_pixels:
        raise Incomplete("limit_exceeded", f"{ctx.where()}: {img.width}x{img.height} pixels, above "
                                           f"ocr_max_pixels={lim.ocr_max_pixels}")
    frames = getattr(img, "n_frames", 1)
    top = TopLines()
    for page in range(min(frames, lim.ocr_max_pages)):
        try:
            img.seek(page)
            img.load()
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            raise Incomplete("corrupt", f"{ctx.where()}: damaged image (frame {page + 1}): {exc}") from None
        ocr.emit(ocr.read_page(img, ctx, ctx.where(), page == 0), ctx, top if page == 0 else None, page + 1)
    if frames > lim.ocr_max_pages:
        raise Incomplete("limit_exceeded", f"{ctx.where()}: {frames} frames, only {lim.ocr_max_pages} OCR'd")
