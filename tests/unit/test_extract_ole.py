"""Legacy Office and WPS files (OLE compound files written by tests.support.docs.ole)."""
from __future__ import annotations

import pytest

from baomi.agent.scan.extract import extract_bytes
from baomi.agent.scan.limits import Limits
from tests.support import docs

pytestmark = pytest.mark.timeout(60)

MARK = "机密★5年"
LIMITS = Limits(max_file_bytes=50 << 20, max_archive_bytes=200 << 20, max_ratio=200.0,
                max_depth=5, max_members=1000)


def chunks(data: bytes, name: str):
    ex = extract_bytes(data, name, LIMITS)
    return ex, [(c.zone, c.text, c.location) for c in ex.chunks]


def test_doc_piece_table():
    ex, got = chunks(docs.doc([MARK, "关于预算的通知"], header="页眉 秘密"), "a.doc")
    assert ex.type == "application/msword" and ex.inspectable
    assert got == [("first_page_top", MARK, {"paragraph": 1}),
                   ("first_page_top", "关于预算的通知", {"paragraph": 2}),
                   ("header", "页眉 秘密", {"paragraph": 3})]


def test_wps_is_named_and_read():
    ex, got = chunks(docs.doc([MARK], wps=True), "a.doc")
    assert ex.type == "application/wps-office.wps" and ex.inspectable
    assert got[0] == ("first_page_top", MARK, {"paragraph": 1})


def test_xls_shared_strings_by_sheet():
    ex, got = chunks(docs.xls({"名册": [[MARK], ["序号", "姓名", "证件号"], ["1", "张三", "110"]], "二": [["秘密"]]}), "a.xls")
    assert ex.type == "application/vnd.ms-excel" and ex.inspectable
    assert got[0] == ("first_page_top", MARK, {"sheet": "名册", "cell": "A1"})
    assert ("body", "张三", {"sheet": "名册", "cell": "B3"}) in got
    assert ("body", "秘密", {"sheet": "二", "cell": "A1"}) in got


def test_ppt_slides():
    ex, got = chunks(docs.ppt([[MARK, "汇报"], ["第二页"]]), "a.ppt")
    assert ex.type == "application/vnd.ms-powerpoint" and ex.inspectable
    assert got == [("first_page_top", MARK, {"slide": 1}), ("first_page_top", "汇报", {"slide": 1}),
                   ("body", "第二页", {"slide": 2})]


def test_ppt_footer_and_comment_are_read():
    """The Header and Footer dialog's text (a CString in a HeadersFootersContainer) and a
    slide comment (Comment10Container) were not read; the comment's author is not text
    of the presentation."""
    ex, got = chunks(docs.ppt([["汇报"]], footer=MARK, comment="秘密★6个月"), "a.ppt")
    assert ex.inspectable
    assert ("footer", MARK, {"block": 2}) in got and ("body", "秘密★6个月", {"block": 2}) in got
    assert not any(text == "张三" for _zone, text, _loc in got)


def test_encrypted_ooxml():
    data = docs.ole({"EncryptionInfo": b"\x04\x00\x04\x00\x40\x00\x00\x00" + b"<encryption/>",
                     "EncryptedPackage": b"\x00" * 64})
    ex = extract_bytes(data, "secret.docx", LIMITS)
    assert not ex.inspectable and ex.reason == "encrypted"


def test_password_protected_doc():
    import struct
    data = bytearray(docs.doc([MARK]))
    # set fEncrypted in the FIB of the WordDocument stream (sector order: 1Table then WordDocument)
    i = bytes(data).index(struct.pack("<HH", 0xA5EC, 0)[:2])
    data[i + 0x0A] |= 0x01
    data[i + 0x0B] |= 0x01
    ex = extract_bytes(bytes(data), "a.doc", LIMITS)
    assert not ex.inspectable and ex.reason == "encrypted"
    assert MARK not in [c.text for c in ex.chunks]


def test_damaged_ole_is_corrupt():
    data = docs.doc([MARK])
    ex = extract_bytes(data[:700], "a.doc", LIMITS)
    assert not ex.inspectable and ex.reason in ("corrupt", "unsupported")


def test_wps_spreadsheet_and_presentation():
    ex, got = chunks(docs.xls({"表": [[MARK]]}, wps=True), "a.xls")
    assert ex.type == "application/wps-office.et"
    assert got == [("first_page_top", MARK, {"sheet": "表", "cell": "A1"})]
    ex, got = chunks(docs.ppt([[MARK]], wps=True), "a.ppt")
    assert ex.type == "application/wps-office.dps"
    assert got == [("first_page_top", MARK, {"slide": 1})]


def test_summary_information_in_code_page_936():
    ex, got = chunks(docs.doc(["正文"], summary={2: "机密文件", 4: "张三", 5: "预算"}), "a.doc")
    meta = {loc["key"]: text for zone, text, loc in got if zone == "metadata"}
    assert meta == {"title": "机密文件", "author": "张三", "keywords": "预算"}
