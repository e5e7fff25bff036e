"""Scanned pages, photos, screenshots and image-only PDFs read by OCR
(Tesseract chi_sim+eng): a marking at the top of a scan is found in
first_page_top, a photo without text is public and inspectable (never
blocked as unreadable), and limits and a missing Tesseract are reported."""
from __future__ import annotations

import io
from pathlib import Path

import pytest

from baomi.common.levels import Level
from baomi.agent.scan import ocr
from baomi.agent.scan.extract import extract_data
from baomi.agent.scan.limits import Limits
from baomi.agent.scan.rules import RuleSet
from tests.support import docs, scans

LIMITS = Limits()
NOTICE = ["关于做好年终工作的通知", "各部门：", "根据上级要求，现将有关事项通知如下。"]
pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return RuleSet.load([])


@pytest.fixture(autouse=True)
def _ocr() -> None:
    scans.need_ocr()


def verdict(rules: RuleSet, data: bytes, limits: Limits = LIMITS):
    ex = extract_data(data, limits)
    ev = rules.evaluate(ex.chunks)
    return ex, ev, rules.level(ev)


@pytest.mark.parametrize("marking,level", [("机密★1年", Level.SECRET), ("绝密★启用前", Level.TOP_SECRET),
                                           ("秘密★6个月", Level.CONFIDENTIAL)])
def test_scanned_page_marking_is_first_page_top(rules: RuleSet, marking: str, level: Level) -> None:
    data = scans.encode(scans.page([marking] + NOTICE, dpi=300), "PNG")
    ex, ev, got = verdict(rules, data)
    assert ex.type == "image/png" and ex.inspectable, ex.detail
    assert got == level
    assert ev[0].zone == "first_page_top" and ev[0].location["ocr"] is True and ev[0].location["page"] == 1


@pytest.mark.parametrize("dpi,rotate,noise,fmt", [(150, 0.0, 0.0, "JPEG"), (300, 0.8, 0.002, "JPEG"),
                                                  (150, -0.6, 0.002, "TIFF"), (300, 0.0, 0.0, "WEBP")],
                         ids=["150dpi-jpeg", "300dpi-rotated-noisy", "150dpi-rotated-tiff", "webp"])
def test_scan_variants(rules: RuleSet, dpi: int, rotate: float, noise: float, fmt: str) -> None:
    img = scans.page(["机密★1年"] + NOTICE, dpi=dpi, rotate=rotate, noise=noise)
    _, ev, level = verdict(rules, scans.encode(img.convert("RGB") if fmt == "JPEG" else img, fmt))
    assert level == Level.SECRET and ev[0].zone == "first_page_top"


def test_heic_phone_photo_of_a_marked_page_is_read(rules: RuleSet) -> None:
    """HEIC, as phones save photos: written by libheif's x265 encoder (pillow-heif), read
    back through the same library and OCR'd."""
    pillow_heif = pytest.importorskip("pillow_heif", reason="pillow-heif is not installed")
    img = scans.page(["机密★1年"] + NOTICE, dpi=200, rotate=0.5, noise=0.002).convert("RGB")
    heif = pillow_heif.from_pillow(img)
    out = io.BytesIO()
    heif.save(out, format="HEIF", quality=85)
    data = out.getvalue()
    assert data[4:12] == b"ftypheic"
    ex, ev, level = verdict(rules, data)
    assert ex.type in ("image/heic", "image/heif") and ex.inspectable, ex.detail
    assert level == Level.SECRET and ev[0].zone == "first_page_top" and ev[0].location["ocr"] is True


def test_damaged_heic_is_corrupt_not_unsupported(rules: RuleSet) -> None:
    """A HEIF header on bytes libheif cannot read is damage, or a document in disguise:
    `corrupt` (blocked toward personal media by default), not `unsupported` (audited)."""
    pillow_heif = pytest.importorskip("pillow_heif", reason="pillow-heif is not installed")
    out = io.BytesIO()
    pillow_heif.from_pillow(scans.photo(400, 300).convert("RGB")).save(out, format="HEIF", quality=60)
    data = out.getvalue()
    for bad in (data[: len(data) // 2], data[:32] + "机密★1年 正文".encode() * 100):
        ex = extract_data(bad, LIMITS)
        assert (ex.inspectable, ex.reason) == (False, "corrupt"), ex.detail


def test_heic_without_text_is_public_and_inspectable(rules: RuleSet) -> None:
    pillow_heif = pytest.importorskip("pillow_heif", reason="pillow-heif is not installed")
    out = io.BytesIO()
    pillow_heif.from_pillow(scans.photo(800, 600).convert("RGB")).save(out, format="HEIF", quality=60)
    ex, ev, level = verdict(rules, out.getvalue())
    assert ex.inspectable and ev == [] and level == Level.PUBLIC, ex.detail


def test_screenshot_small_image(rules: RuleSet) -> None:
    from PIL import Image, ImageDraw, ImageFont
    img = Image.new("RGB", (720, 200), (245, 245, 245))
    draw = ImageDraw.Draw(img)
    draw.text((20, 20), "绝密★启用前", font=ImageFont.truetype(scans.cjk_font(), 28), fill=(0, 0, 0))
    draw.text((20, 90), "2026年考试安排", font=ImageFont.truetype(scans.cjk_font(), 20), fill=(40, 40, 40))
    assert verdict(rules, scans.encode(img, "PNG"))[2] == Level.TOP_SECRET


def test_photo_without_text_is_public_and_inspectable(rules: RuleSet) -> None:
    """Regression: every photo was 'unsupported', so a holiday photo was blocked toward a stick."""
    ex, ev, level = verdict(rules, scans.encode(scans.photo(), "JPEG", quality=85))
    assert ex.type == "image/jpeg" and ex.inspectable and ex.reason is None
    assert level == Level.PUBLIC and ev == []


def test_tiny_image_is_public_and_inspectable(rules: RuleSet) -> None:
    from PIL import Image
    ex = extract_data(scans.encode(Image.new("RGB", (1, 1), "white"), "PNG"), LIMITS)
    assert (ex.inspectable, ex.reason, ex.chunks) == (True, None, [])


def test_scanned_training_page_is_not_a_marking(rules: RuleSet) -> None:
    img = scans.page(["保密知识培训", "国家秘密的密级分为绝密、机密、秘密三级。", "商业秘密保护协议"], dpi=300)
    ex, ev, level = verdict(rules, scans.encode(img, "PNG"))
    assert ex.inspectable and ev == [] and level == Level.PUBLIC


def test_multi_page_tiff_second_page_is_body(rules: RuleSet) -> None:
    first = scans.page(["会议纪要"] + NOTICE, dpi=150)
    second = scans.page(["秘密★6个月", "附件"], dpi=150, first_pt=16)  # body size: the top band is page 1's only
    data = scans.encode(first, "TIFF", save_all=True, append_images=[second])
    _, ev, level = verdict(rules, data)
    assert level == Level.CONFIDENTIAL and [(e.zone, e.location["page"]) for e in ev] == [("body", 2)]


def test_image_only_pdf_is_ocrd(rules: RuleSet) -> None:
    data = scans.encode(scans.page(["绝密★启用前", "2026年全国统一考试"], dpi=150).convert("RGB"), "PDF",
                        resolution=150)
    ex, ev, level = verdict(rules, data)
    assert ex.inspectable and level == Level.TOP_SECRET
    assert ev[0].zone == "first_page_top" and ev[0].location["ocr"] is True


def test_image_only_pdf_without_ocr_is_never_inspected(rules: RuleSet) -> None:
    """Regression: an image-only PDF came back public and inspectable from its metadata alone."""
    data = scans.encode(scans.page(["绝密★启用前"], dpi=100).convert("RGB"), "PDF", resolution=100)
    ex = extract_data(data, Limits(ocr=False))
    assert (ex.inspectable, ex.reason) == (False, "unsupported") and "no text layer" in (ex.detail or "")


def test_without_tesseract_an_image_is_unsupported_with_the_reason(rules: RuleSet, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    ocr.missing.cache_clear()
    try:
        ex = extract_data(scans.encode(scans.photo(200, 100), "PNG"), LIMITS)
    finally:
        monkeypatch.undo()
        ocr.missing.cache_clear()
    assert (ex.inspectable, ex.reason) == (False, "unsupported") and "tesseract" in (ex.detail or "")


def test_ocr_limits(rules: RuleSet) -> None:
    img = scans.page(["机密★1年"], dpi=100)
    ex = extract_data(scans.encode(img, "PNG"), Limits(ocr_max_pixels=100_000))
    assert (ex.inspectable, ex.reason) == (False, "limit_exceeded") and "ocr_max_pixels" in (ex.detail or "")
    pages = scans.encode(img, "TIFF", save_all=True, append_images=[img, img])
    ex = extract_data(pages, Limits(ocr_max_pages=2))
    assert (ex.inspectable, ex.reason) == (False, "limit_exceeded")
    ex = extract_data(scans.encode(img, "PNG"), Limits(ocr_timeout_s=0.001))
    assert (ex.inspectable, ex.reason) == (False, "limit_exceeded") and "ocr_timeout_s" in (ex.detail or "")


def test_damaged_image_is_corrupt() -> None:
    data = scans.encode(scans.page(["机密★1年"], dpi=100), "PNG")
    ex = extract_data(data[: len(data) // 2], LIMITS)
    assert not ex.inspectable and ex.reason == "corrupt"


@pytest.mark.parametrize("dpi", [150, 300])
def test_libreoffice_pdf_rasterised_by_pdftoppm(rules: RuleSet, dpi: int) -> None:
    """A marked document printed by LibreOffice and scanned back (poppler's pdftoppm)."""
    pdf = docs.soffice_convert(docs.odf("text", docs.odt_body(["机密★1年"] + NOTICE), flat=True), ".fodt", "pdf")
    if pdf is None:
        pytest.skip("needs LibreOffice (soffice) on PATH to print a real document")
    png = scans.pdftoppm(pdf, dpi)
    if png is None:
        pytest.skip("needs pdftoppm (poppler-utils) to rasterise the page")
    ex, ev, level = verdict(rules, png)
    assert level == Level.SECRET and ev[0].zone == "first_page_top", [c.text for c in ex.chunks][:3]


@pytest.mark.parametrize("line,want", [("机密广1年", "机密★1年"), ("绝密文启用前", "绝密★启用前"), ("秘密6个月", "秘密★6个月"),
                                       ("机密★1年", "机密★1年"), ("机密文件的管理", "机密文件的管理"),
                                       ("绝密、机密、秘密三级", "绝密、机密、秘密三级"), ("秘密花园1年", "秘密花园1年")])
def test_star_read_as_another_glyph_is_repaired(line: str, want: str) -> None:
    assert ocr.repair_star(line) == want


def _cfg(**scan: object):
    from baomi.agent.config import AgentConfig
    c = AgentConfig()
    c.scan.rule_dirs = []
    for k, v in scan.items():
        setattr(c.scan, k, v)
    return c


def test_ocr_in_the_memory_capped_worker(tmp_path: Path) -> None:
    """Tesseract runs as the worker's child, under its address-space cap."""
    from baomi.agent.scan.engine import Scanner
    f = tmp_path / "scan.png"
    f.write_bytes(scans.encode(scans.page(["机密★1年"] + NOTICE, dpi=300), "PNG"))
    photo = tmp_path / "holiday.jpg"
    photo.write_bytes(scans.encode(scans.photo(), "JPEG"))
    with Scanner(_cfg(), jobs=1) as s:
        v = s.scan_file(f)
        assert (v.level, v.inspectable) == (Level.SECRET, True), v.detail
        v = s.scan_file(photo)
        assert (v.level, v.inspectable, v.reason) == (Level.PUBLIC, True, None)


def test_worker_killed_during_ocr_leaves_no_tesseract(tmp_path: Path) -> None:
    import time

    import psutil

    from baomi.agent.scan.engine import Scanner
    f = tmp_path / "scan.png"
    f.write_bytes(scans.encode(scans.page(["机密★1年"] + NOTICE * 20, dpi=300), "PNG"))
    before = {p.pid for p in psutil.process_iter(["name"]) if p.info["name"] == "tesseract"}
    with Scanner(_cfg(timeout_s=0.3), jobs=1) as s:
        v = s.scan_file(f)
    assert (v.inspectable, v.reason) == (False, "timeout")
    for _ in range(100):  # the kernel delivers the parent-death signal; wait for the exit, not a duration
        left = [p for p in psutil.process_iter(["name"]) if p.info["name"] == "tesseract" and p.pid not in before]
        if not left:
            break
        time.sleep(0.1)
    assert not left, "an OCR child outlived its worker"


def _scan_file(tmp_path: Path, name: str, data: bytes, **scan: object):
    from baomi.agent.scan.engine import Scanner
    f = tmp_path / name
    f.write_bytes(data)
    with Scanner(_cfg(**scan), jobs=1) as s:
        return s.scan_file(f)


def test_scan_pasted_into_a_docx_is_ocrd(tmp_path: Path) -> None:
    """A scanned 红头文件 pasted into Word: no text, one picture with the marking at its top."""
    scan = scans.encode(scans.page(["机密★1年"] + NOTICE, dpi=150).convert("RGB"), "JPEG")
    v = _scan_file(tmp_path, "scan.docx", docs.docx([], media=scan))
    assert v.level == Level.SECRET and v.inspectable
    assert [(e.zone, e.location["member"]) for e in v.evidence] == [("first_page_top", "word/media/image1.jpeg")]
    off = _scan_file(tmp_path, "scan2.docx", docs.docx([], media=scan), ocr_embedded=0)
    assert off.level == Level.PUBLIC and off.inspectable, "ocr_embedded = 0 leaves pictures alone"


def test_picture_in_a_document_with_text_is_body(tmp_path: Path) -> None:
    sign = scans.encode(scans.page(["机密", "档案室"], dpi=100).convert("RGB"), "JPEG")
    v = _scan_file(tmp_path, "report.pptx", docs.pptx([["年度工作汇报"], ["现场照片"]], media=sign))
    assert v.level == Level.PUBLIC and v.inspectable, "a bare word on a photo in a report is not a marking"
    starred = scans.encode(scans.page(["秘密★6个月"] + NOTICE, dpi=150).convert("RGB"), "JPEG")
    v = _scan_file(tmp_path, "report2.pptx", docs.pptx([["年度工作汇报"]], media=starred))
    assert v.level == Level.CONFIDENTIAL and v.evidence[0].zone == "body"


def test_damaged_picture_in_a_document_does_not_make_it_uninspectable(tmp_path: Path) -> None:
    v = _scan_file(tmp_path, "d.docx", docs.docx(["会议纪要"], media=b"\xff\xd8\xff\xe0" + bytes(5000)))
    assert (v.level, v.inspectable, v.reason) == (Level.PUBLIC, True, None)


def test_marked_text_skips_picture_ocr(tmp_path: Path) -> None:
    scan = scans.encode(scans.page(["绝密★启用前"], dpi=100).convert("RGB"), "JPEG")
    v = _scan_file(tmp_path, "m.docx", docs.docx(["秘密★1年", "正文"], media=scan))
    assert v.level == Level.CONFIDENTIAL, "the text's marking decides; pictures are OCR'd only for unmarked text"


@pytest.mark.parametrize("dpi", [150, 300])
def test_libreoffice_print_scanned_back_to_an_image_only_pdf(rules: RuleSet, dpi: int) -> None:
    """Printed by LibreOffice, rasterised by pdftoppm, turned slightly and speckled as a
    scanner does, saved as an image-only PDF (what img2pdf makes of a scan)."""
    import io
    import random

    from PIL import Image
    pdf = docs.soffice_convert(docs.odf("text", docs.odt_body(["绝密★启用前"] + NOTICE), flat=True), ".fodt", "pdf")
    if pdf is None:
        pytest.skip("needs LibreOffice (soffice) on PATH to print a real document")
    png = scans.pdftoppm(pdf, dpi)
    if png is None:
        pytest.skip("needs pdftoppm (poppler-utils) to rasterise the page")
    img = Image.open(io.BytesIO(png)).convert("L").rotate(0.5, fillcolor=255, resample=Image.Resampling.BICUBIC)
    px, rnd = img.load(), random.Random(dpi)
    for _ in range(img.width * img.height // 1000):
        px[rnd.randrange(img.width), rnd.randrange(img.height)] = 90
    scanned = scans.encode(img, "PDF", resolution=dpi)
    ex, ev, level = verdict(rules, scanned)
    assert ex.inspectable and level == Level.TOP_SECRET and ev[0].zone == "first_page_top", \
        [c.text for c in ex.chunks if c.zone != "metadata"][:3]


def test_red_boxed_marking_stamp_at_the_top(rules: RuleSet) -> None:
    """A straight red 密级 stamp in a box (what a rubber stamp on a printed page gives) is read;
    curved text around a round seal is not (docs/formats.md)."""
    from PIL import ImageDraw, ImageFont
    dpi = 200
    img = scans.page(["", *NOTICE], dpi=dpi).convert("RGB")
    draw = ImageDraw.Draw(img)
    size = int(20 * dpi / 72)
    x, y = int(1.1 * dpi), int(0.4 * dpi)
    draw.rectangle([x - 15, y - 10, x + int(4.4 * size), y + int(1.4 * size)], outline=(210, 20, 30), width=6)
    draw.text((x, y), "机密★1年", font=ImageFont.truetype(scans.cjk_font(), size), fill=(210, 20, 30))
    _, ev, level = verdict(rules, scans.encode(img, "PNG"))
    assert level == Level.SECRET and ev[0].zone == "first_page_top"


def test_ocr_budget_stays_inside_the_worker_timeout() -> None:
    """A site whose timeout_s is below the OCR default still loads; OCR ends first, with its own reason."""
    c = _cfg(timeout_s=10.0)
    c.scan.validate("agent.toml", "scan")
    assert Limits.from_config(c.scan).ocr_timeout_s == 8.0
    assert Limits.from_config(_cfg().scan).ocr_timeout_s == 20.0
