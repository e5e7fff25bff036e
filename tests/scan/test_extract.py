"""Extractors on real documents of every format: the text reaches the rules in
the right zone and location, and bad input gives an honest verdict."""
from __future__ import annotations

from pathlib import Path

import pytest

from baomi.common.levels import Level
from baomi.agent.scan.extract import extract, extract_data
from baomi.agent.scan.limits import Limits
from baomi.agent.scan.rules import RuleSet
from tests.support import docs

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
LIMITS = Limits()


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return RuleSet.load([])


def verdict(rules: RuleSet, data: bytes, limits: Limits = LIMITS):
    ex = extract_data(data, limits)
    ev = rules.evaluate(ex.chunks)
    return ex, ev, rules.level(ev)


@pytest.mark.parametrize("enc", ["utf-8", "gb18030", "gbk", "utf-16", "utf-16-le", "utf-16-be", "utf-8-sig"])
def test_text_encodings(rules: RuleSet, enc: str) -> None:
    ex, ev, level = verdict(rules, "机密★1年\n关于做好年终工作的通知\n各部门：\n".encode(enc))
    assert level == Level.SECRET and ex.inspectable
    assert ev[0].zone == "first_page_top" and ev[0].location == {"line": 1}


def test_docx_runs_header_footer_textbox_comments_table(rules: RuleSet) -> None:
    ex, ev, level = verdict(rules, docs.docx(["机密★5年", "关于印发的通知"], split_runs=True))
    assert ex.type.endswith("wordprocessingml.document") and level == Level.SECRET
    assert ev[0].zone == "first_page_top"
    _, ev, level = verdict(rules, docs.docx(["正文"], header="秘密★6个月"))
    assert level == Level.CONFIDENTIAL and ev[0].zone == "header" and ev[0].location["part"] == "word/header1.xml"
    _, ev, _ = verdict(rules, docs.docx(["正文"], footer="绝密★长期"))
    assert ev[0].zone == "footer" and ev[0].level == Level.TOP_SECRET
    _, ev, level = verdict(rules, docs.docx(["关于某事的报告"], textbox="【绝密★启用前】", split_runs=True))
    assert level == Level.TOP_SECRET
    _, ev, level = verdict(rules, docs.docx(["正文"], comment="机密★1年"))
    assert level == Level.SECRET and ev[0].location["part"] == "word/comments.xml"
    # a table cell with the star form counts; a bare word in a table is a column value
    assert verdict(rules, docs.docx(["正文"], table=[["机密★1年", "x"]]))[2] == Level.SECRET
    assert verdict(rules, docs.docx(["正文"], table=[["名称", "密级"], ["报告", "机密"]]))[2] == Level.PUBLIC


def test_docx_labels(rules: RuleSet) -> None:
    data = docs.docx(["正文"], custom={"MSIP_Label_6f3b1a2c-1234-4abc-9def-0123456789ab_Name": "机密",
                                      "MSIP_Label_6f3b1a2c-1234-4abc-9def-0123456789ab_Enabled": "true"},
                     label_ids=["6f3b1a2c-1234-4abc-9def-0123456789ab"], title="季度总结")
    ex, ev, level = verdict(rules, data)
    assert level == Level.SECRET and [e.zone for e in ev] == ["metadata"]
    keys = {c.location.get("key") for c in ex.chunks if c.zone == "metadata"}
    assert {"title", "LabelInfo", "MSIP_Label_6f3b1a2c-1234-4abc-9def-0123456789ab_Name"} <= keys


def test_xlsx_marking_at_the_top_but_not_a_register(rules: RuleSet) -> None:
    ex, ev, level = verdict(rules, docs.xlsx({"封面": [["机密"], ["2026年预算表"]], "明细": [["项目", "金额"]]}))
    assert level == Level.SECRET and ev[0].location == {"sheet": "封面", "cell": "A1"}
    register = docs.xlsx({"登记簿": [["序号", "文件名称", "密级", "份数"]] +
                          [[str(i), f"文件{i}", ["机密", "秘密", "绝密"][i % 3], "1"] for i in range(1, 40)]})
    assert verdict(rules, register)[2] == Level.PUBLIC
    _, ev, level = verdict(rules, docs.xlsx({"S": [["x", "y"]]}, header="秘密★1年"))
    assert level == Level.CONFIDENTIAL and ev[0].zone == "header"


def test_pptx_first_slide_top(rules: RuleSet) -> None:
    _, ev, level = verdict(rules, docs.pptx([["绝密★启用前", "项目汇报"], ["第二页"]]))
    assert level == Level.TOP_SECRET and ev[0].location == {"slide": 1}
    assert verdict(rules, docs.pptx([["培训：绝密、机密、秘密的区别"], ["机密"]]))[2] == Level.PUBLIC


def test_pdf_text_layer_wraps_and_metadata(rules: RuleSet) -> None:
    top = ["机密★2027年6月30日", "关于某事的通知"] + [f"第{i}行" for i in range(3, 9)]
    data = docs.pdf([top + ["关于某项目的", "情况报告"], ["第二页正文"]], title="机密")
    ex, ev, level = verdict(rules, data)
    assert ex.type == "application/pdf" and level == Level.SECRET
    assert ev[0].zone == "first_page_top" and ev[0].location["page"] == 1
    assert any("某项目的情况报告" in c.text for c in ex.chunks), "a CJK line wrap is joined"
    assert any(c.zone == "metadata" and c.location.get("key") == "Title" for c in ex.chunks)


def test_ofd_pages_and_custom_data(rules: RuleSet) -> None:
    ex, ev, level = verdict(rules, docs.ofd([["秘密★3年", "关于某事的报告"], ["第二页"]], custom={"密级": "机密"}))
    assert ex.type == "application/ofd"
    assert {(e.rule, e.zone) for e in ev} == {("cn.national.star", "first_page_top"), ("label.property", "metadata")}
    assert level == Level.CONFIDENTIAL, "the body marking wins over the CustomData label"
    assert "关于某事的报告" in [c.text for c in ex.chunks], "pieces are put back in reading order"


def test_marked_document_attached_to_an_ofd_is_found_as_its_member(rules: RuleSet) -> None:
    """OFD attachments (附件) were `unsupported`: a clean cover letter with a marked
    report attached reached a personal medium with only an audit."""
    report = docs.docx(["机密★1年", "关于年度采购计划的报告"])
    data = docs.ofd([["关于报送材料的函", "详见附件。"]], attachments={"附件1 采购报告": report, "说明": "请查收".encode()})
    ex, ev, level = verdict(rules, data)
    assert ex.inspectable and level == Level.SECRET
    assert ev[0].location == {"paragraph": 1, "member": "附件1 采购报告"}
    assert any(c.text == "请查收" and c.location.get("member") == "说明" for c in ex.chunks)


def test_an_ofd_attachment_that_is_missing_is_corrupt(rules: RuleSet) -> None:
    import io
    import zipfile
    good = zipfile.ZipFile(io.BytesIO(docs.ofd([["函"]], attachments={"附件": b"x"})))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for info in good.infolist():
            if not info.filename.endswith("file1.bin"):
                z.writestr(info.filename, good.read(info))
    ex, _ev, _level = verdict(rules, out.getvalue())
    assert not ex.inspectable and ex.reason == "corrupt" and "attachment file1.bin missing" in ex.detail


def test_rtf_gbk_and_unicode_escapes(rules: RuleSet) -> None:
    ex, ev, level = verdict(rules, docs.rtf(["机密★1年", "各单位：请做好保密工作。"]))
    assert level == Level.SECRET
    assert "各单位：请做好保密工作。" in [c.text for c in ex.chunks]


def test_archives_nested_with_gbk_names(rules: RuleSet) -> None:
    inner = docs.zip_of({"资料/机密文件.txt": "机密★1年\n".encode("gbk")}, gbk_names=True)
    outer = docs.tar_gz({"备份/inner.zip": inner, "readme.txt": b"hello"})
    ex, ev, level = verdict(rules, outer)
    assert level == Level.SECRET and ex.inspectable
    assert ev[0].location["member"] == "备份/inner.zip/资料/机密文件.txt"
    _, ev, level = verdict(rules, docs.sevenzip({"a.docx": docs.docx(["绝密★长期"])}))
    assert level == Level.TOP_SECRET and ev[0].location["member"] == "a.docx"
    _, ev, level = verdict(rules, docs.gz("秘密★1年\n".encode()))
    assert level == Level.CONFIDENTIAL


def test_encrypted_inputs_are_reported(rules: RuleSet) -> None:
    ex = extract_data(docs.sevenzip({"x.txt": "机密★1年".encode()}, password="pw"), LIMITS)
    assert (ex.inspectable, ex.reason) == (False, "encrypted")
    z = docs.encrypted_zip({"x.txt": "机密★1年".encode()})
    if z is None:
        pytest.skip("7z tool not installed (p7zip-full)")
    ex = extract_data(z, LIMITS)
    assert (ex.inspectable, ex.reason) == (False, "encrypted")


def test_partial_archive_keeps_what_it_found(rules: RuleSet) -> None:
    z = docs.encrypted_zip({"x.txt": b"locked"})
    if z is None:
        pytest.skip("7z tool not installed (p7zip-full)")
    mixed = docs.zip_of({"locked.zip": z, "open.txt": "机密★1年\n".encode()})
    ex, ev, level = verdict(rules, mixed)
    assert (ex.inspectable, ex.reason) == (False, "encrypted") and level == Level.SECRET


def test_zip_member_in_a_compression_this_reader_lacks_fails_closed(rules: RuleSet) -> None:
    """Regression: a marked text zipped with Deflate64 (7-Zip, and Windows for large
    files) came back `unsupported`, the cell for types that carry no text, which lets a
    copy to a personal medium through with an audit. It is now `unreadable`, judged as
    damaged (blocked toward personal media by default)."""
    from baomi.common.policy import uninspectable_kind
    z = docs.zip_by_7z({"报告.txt": ("机密★1年\n" + "正文内容。\n" * 300).encode()}, "-mm=Deflate64")
    if z is None:
        pytest.skip("7z tool not installed (p7zip-full)")
    ex = extract_data(z, LIMITS)
    assert (ex.inspectable, ex.reason) == (False, "unreadable"), ex.detail
    assert uninspectable_kind(ex.reason) == "damaged_or_over_limits"
    # next to a member that carries no text, the unreadable one still decides
    mixed = docs.zip_of({"inner.zip": z, "song.mp3": b"ID3\x04\x00" + bytes(4000)})
    assert extract_data(mixed, LIMITS).reason == "unreadable"


def test_zip_claiming_a_version_this_reader_does_not_know_is_not_a_crash() -> None:
    """Regression (found by the mutation test): a central directory claiming "version
    needed 6.4" raised NotImplementedError out of type detection."""
    z = bytearray(docs.zip_of({"a.txt": b"hello"}))
    cd = z.find(b"PK\x01\x02")
    z[cd + 6:cd + 8] = (64).to_bytes(2, "little")
    ex = extract_data(bytes(z), LIMITS)
    assert not ex.inspectable and ex.reason in ("unreadable", "corrupt"), (ex.reason, ex.detail)
    pptx = bytearray(docs.pptx([["机密★1年"]]))
    cd = pptx.find(b"PK\x01\x02")
    pptx[cd + 6:cd + 8] = (64).to_bytes(2, "little")
    ex = extract_data(bytes(pptx), LIMITS)
    assert not ex.inspectable and ex.reason in ("unreadable", "corrupt"), (ex.reason, ex.detail)


def test_zip_bomb_and_limits() -> None:
    ex = extract_data(docs.zip_bomb(3, 10, 10 * 1024 * 1024), LIMITS)
    assert (ex.inspectable, ex.reason) == (False, "limit_exceeded")
    deep = "机密★1年".encode()
    for i in range(8):
        deep = docs.zip_of({f"d{i}.zip" if i else "x.txt": deep})
    ex = extract_data(deep, Limits(max_depth=3))
    assert (ex.inspectable, ex.reason) == (False, "limit_exceeded") and "nested deeper" in (ex.detail or "")
    many = docs.zip_of({f"f{i}.txt": b"x" for i in range(50)})
    ex = extract_data(many, Limits(max_members=10))
    assert (ex.inspectable, ex.reason) == (False, "limit_exceeded")
    ex = extract_data(b"x" * 1000, Limits(max_file_bytes=100))
    assert (ex.inspectable, ex.reason) == (False, "too_large")


def test_truncated_and_broken_documents() -> None:
    data = docs.docx(["机密★1年"] + ["正文"] * 2000)
    ex = extract_data(data[: len(data) // 2], LIMITS)
    assert not ex.inspectable and ex.reason == "corrupt"
    pdf = docs.pdf([["机密★1年"]])
    ex = extract_data(pdf[:200], LIMITS)
    assert not ex.inspectable and ex.reason == "corrupt"
    bomb_xml = b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]><w:document>&b;</w:document>'
    ex = extract_data(docs._zip({"word/document.xml": bomb_xml, "[Content_Types].xml": b"<Types/>"}), LIMITS)
    assert not ex.inspectable and ex.reason == "corrupt" and "refused XML" in (ex.detail or "")


def test_chinese_text_libmagic_takes_for_a_program(rules: RuleSet) -> None:
    """UTF-8 text opening with 首页 (bytes e9 a6 96) looks like a DOS .COM jump to libmagic."""
    ex, ev, level = verdict(rules, "首页 > 工作\n机密★1年\n".encode())
    assert ex.type == "text/plain" and ex.inspectable and level == Level.SECRET


def test_image_without_text_is_public_or_unsupported_without_ocr() -> None:
    """A 1x1 PNG: OCR finds no text (public, inspectable); without Tesseract it is unsupported."""
    import struct
    import zlib

    from baomi.agent.scan import ocr

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(b"\x00\x00")) + chunk(b"IEND", b""))
    ex = extract_data(png, LIMITS)
    assert ex.type == "image/png"
    if ocr.missing(LIMITS.ocr_languages):
        assert (ex.inspectable, ex.reason) == (False, "unsupported") and "tesseract" in (ex.detail or "")
    else:
        assert (ex.inspectable, ex.reason, ex.chunks) == (True, None, [])
    ex = extract_data(png, Limits(ocr=False))
    assert (ex.inspectable, ex.reason) == (False, "unsupported") and "ocr = false" in (ex.detail or "")


def test_extension_never_decides(tmp_path: Path, rules: RuleSet) -> None:
    f = tmp_path / "holiday.jpg"
    f.write_bytes(docs.docx(["机密★1年"]))
    ex = extract(f, LIMITS)
    assert ex.type.endswith("wordprocessingml.document")
    assert rules.level(rules.evaluate(ex.chunks)) == Level.SECRET


def _corpus(pattern: str) -> list[Path]:
    return sorted(CORPUS.rglob(pattern)) if CORPUS.is_dir() else []


@pytest.mark.skipif(not _corpus("*.doc"), reason="public corpus (../shared/corpus) not present")
def test_legacy_word_and_excel_from_the_corpus(rules: RuleSet) -> None:
    doc = [p for p in _corpus("*.doc") if p.name == "test-ole-file.doc"]
    if doc:
        ex = extract(doc[0], LIMITS)
        assert ex.type == "application/msword" and ex.inspectable and ex.chunks
    sst = [p for p in _corpus("*.xls") if p.name == "sst_continue.xls"]
    if sst:
        ex = extract(sst[0], LIMITS)
        assert ex.type == "application/vnd.ms-excel" and ex.inspectable
        assert len([c for c in ex.chunks if "cell" in c.location]) > 10


def test_random_looking_blob_of_no_known_type_is_encrypted() -> None:
    """A VeraCrypt container or gpg --symmetric output hides its content: encrypted, not merely unsupported."""
    import random
    blob = random.Random(3).randbytes(200_000)
    ex = extract_data(blob, LIMITS)
    assert (ex.inspectable, ex.reason) == (False, "encrypted") and "random" in (ex.detail or "")
    ex = extract_data(docs.zip_of({"vault.bin": blob, "readme.txt": "说明\n".encode()}), LIMITS)
    assert (ex.inspectable, ex.reason) == (False, "encrypted")
    structured = bytes(range(256)) * 64 + b"\x00" * 60_000  # binary, but not random
    ex = extract_data(b"\x7fBIN" + structured, LIMITS)
    assert ex.reason == "unsupported"
