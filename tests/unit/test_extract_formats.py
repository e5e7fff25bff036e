"""Extraction of every document format from real files written by tests.support.docs."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from baomi.agent.scan.extract import Extraction, extract, extract_bytes
from baomi.agent.scan.limits import Limits
from tests.support import docs

pytestmark = pytest.mark.timeout(60)

MARK = "机密★5年"
LIMITS = Limits(max_file_bytes=50 << 20, max_archive_bytes=200 << 20, max_ratio=200.0,
                max_depth=5, max_members=1000)


def run(tmp_path: Path, name: str, data: bytes) -> Extraction:
    path = tmp_path / name
    path.write_bytes(data)
    return extract(path, LIMITS)


def chunks(ex: Extraction, zone: str | None = None) -> list[tuple[str, str, dict]]:
    # a long text's body arrives as one multi-line chunk; the rules read it line by line, so do we
    return [(c.zone, c.text, c.location) for b in ex.chunks for c in b.lines() if zone is None or c.zone == zone]


def texts(ex: Extraction, zone: str) -> list[str]:
    return [c.text for b in ex.chunks for c in b.lines() if c.zone == zone]


# ---- plain text -------------------------------------------------------------

@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030", "utf-16", "utf-16-le", "utf-16-be"])
def test_text_encodings(tmp_path, encoding):
    body = f"{MARK}\n关于二〇二六年度预算的通知\n各部门：\n"
    ex = run(tmp_path, "notice.bin", body.encode(encoding))
    assert ex.inspectable, ex.reason
    assert ex.type.startswith("text/")
    assert chunks(ex)[0] == ("first_page_top", MARK, {"line": 1})
    assert texts(ex, "first_page_top")[1] == "关于二〇二六年度预算的通知"


def test_text_after_eight_lines_is_body(tmp_path):
    lines = [f"第{i}行" for i in range(1, 12)]
    ex = run(tmp_path, "t.txt", "\n".join(lines).encode("gbk"))
    assert texts(ex, "first_page_top") == lines[:8]
    assert chunks(ex, "body")[0] == ("body", "第9行", {"line": 9})


def test_extension_is_ignored(tmp_path):
    ex = run(tmp_path, "photo.jpg", docs.docx([MARK]))
    assert ex.type == "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    assert texts(ex, "first_page_top") == [MARK]


def test_binary_is_unsupported(tmp_path):
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    ex = run(tmp_path, "x.txt", png)
    assert not ex.inspectable and ex.reason == "unsupported"
    assert ex.detail


def test_missing_path_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        extract(tmp_path / "absent.txt", LIMITS)


def test_too_large(tmp_path):
    small = Limits(max_file_bytes=100, max_archive_bytes=1000, max_ratio=200.0, max_depth=5, max_members=10)
    path = tmp_path / "big.txt"
    path.write_bytes(("机密\n" * 200).encode())
    ex = extract(path, small)
    assert not ex.inspectable and ex.reason == "too_large"


# ---- docx ---------------------------------------------------------------------

def test_docx_zones(tmp_path):
    data = docs.docx([MARK, "关于预算的通知", "正文第一段"], header="页眉 秘密", footer="第 1 页",
                     table=[["姓名", "密级"], ["张三", "绝密"]], comment="请核对", title="预算通知")
    ex = run(tmp_path, "a.docx", data)
    assert ex.inspectable
    assert texts(ex, "first_page_top")[:3] == [MARK, "关于预算的通知", "正文第一段"]
    assert ("header", "页眉 秘密", {"part": "word/header1.xml", "paragraph": 1}) in chunks(ex)
    assert ("footer", "第 1 页", {"part": "word/footer1.xml", "paragraph": 1}) in chunks(ex)
    assert {"姓名", "密级", "张三", "绝密"} <= set(texts(ex, "body"))
    assert "请核对" in texts(ex, "body")
    meta = {c.location["key"].lower(): c.text for c in ex.chunks if c.zone == "metadata"}
    assert meta["title"] == "预算通知"
    # the first-page lines are not repeated in the body
    assert MARK not in texts(ex, "body")


def test_docx_split_runs_are_joined(tmp_path):
    ex = run(tmp_path, "a.docx", docs.docx([MARK, "正文"], split_runs=True))
    assert texts(ex, "first_page_top")[:2] == [MARK, "正文"]


def test_docx_text_box(tmp_path):
    ex = run(tmp_path, "a.docx", docs.docx(["正文"], textbox=MARK))
    assert MARK in [c.text for c in ex.chunks if c.zone in ("first_page_top", "body")]


def test_docx_sensitivity_label(tmp_path):
    guid = "3a5f6c1e-0000-4000-8000-000000000001"
    ex = run(tmp_path, "a.docx", docs.docx(["正文"], custom={f"MSIP_Label_{guid}_Name": "机密"}, label_ids=[guid]))
    meta = {c.location.get("key"): c.text for c in ex.chunks if c.zone == "metadata"}
    assert meta[f"MSIP_Label_{guid}_Name"] == "机密"
    assert any(guid in (c.text + str(c.location)) for c in ex.chunks
               if c.zone == "metadata" and "LabelInfo" in str(c.location))


def test_truncated_docx_is_corrupt(tmp_path):
    data = docs.docx([MARK, "正文"] * 50)
    ex = run(tmp_path, "a.docx", data[: len(data) // 2])
    assert not ex.inspectable
    assert ex.reason in ("corrupt", "unsupported")


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_billion_laughs_is_corrupt(tmp_path, encoding):
    """In UTF-16 the DOCTYPE is not the ASCII bytes the C parser's shortcut looks for:
    it must still reach defusedxml."""
    lol = (f'<?xml version="1.0" encoding="{encoding}"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
           '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
           '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
           f'<w:document {docs.W}><w:body><w:p><w:r><w:t>&lol3;</w:t></w:r></w:p></w:body></w:document>')
    good = docs.docx([MARK])
    src = zipfile.ZipFile(io.BytesIO(good))
    parts = {n: src.read(n) for n in src.namelist()}
    parts["word/document.xml"] = lol.encode(encoding)
    ex = run(tmp_path, "lol.docx", docs._zip(parts))
    assert not ex.inspectable and ex.reason == "corrupt"
    assert "lol" * 10 not in "".join(c.text for c in ex.chunks)


# ---- xlsx / pptx ---------------------------------------------------------------

def test_xlsx_banner_and_register(tmp_path):
    register = [[MARK], ["序号", "姓名", "证件号"]] + [[str(i), f"人员{i}", f"11010{i}"] for i in range(1, 6)]
    ex = run(tmp_path, "r.xlsx", docs.xlsx({"名册": register, "第二页": [["秘密"]]}))
    assert ex.inspectable
    assert chunks(ex, "first_page_top") == [("first_page_top", MARK, {"sheet": "名册", "cell": "A1"})]
    assert ("body", "人员3", {"sheet": "名册", "cell": "B5"}) in chunks(ex)
    assert ("body", "秘密", {"sheet": "第二页", "cell": "A1"}) in chunks(ex)


def test_pptx_slides(tmp_path):
    ex = run(tmp_path, "p.pptx", docs.pptx([[MARK, "汇报"], ["第二页内容"]]))
    assert chunks(ex, "first_page_top")[0] == ("first_page_top", MARK, {"slide": 1})
    assert ("body", "第二页内容", {"slide": 2}) in chunks(ex)


# ---- PDF, OFD, RTF ---------------------------------------------------------------

def test_pdf_lines_and_info(tmp_path):
    ex = run(tmp_path, "a.pdf", docs.pdf([[MARK, "关于预算的通知"], ["第二页正文"]], title="预算", subject="机密"))
    assert ex.type == "application/pdf" and ex.inspectable
    assert chunks(ex, "first_page_top")[:2] == [("first_page_top", MARK, {"page": 1, "line": 1}),
                                                 ("first_page_top", "关于预算的通知", {"page": 1, "line": 2})]
    assert any(c.text == "第二页正文" and c.location.get("page") == 2 for c in ex.chunks if c.zone == "body")
    meta = {c.location["key"]: c.text for c in ex.chunks if c.zone == "metadata"}
    assert meta.get("Title") == "预算" and meta.get("Subject") == "机密"


def test_pdf_xmp(tmp_path):
    ex = run(tmp_path, "x.pdf", docs.pdf([["正文"]], xmp={"pdfx:Classification": "机密", "pdf:Keywords": "预算"}))
    meta = {c.location["key"]: c.text for c in ex.chunks if c.zone == "metadata"}
    assert meta["xmp:Classification"] == "机密" and meta["xmp:Keywords"] == "预算"


def test_pdf_wrapped_line_is_joined(tmp_path):
    # the layout broke the phrase 国家秘密 between two lines of page 2
    ex = run(tmp_path, "w.pdf", docs.pdf([[MARK], ["这份文件属于国家", "秘密，请妥善保管"]]))
    assert ("body", "这份文件属于国家秘密，请妥善保管", {"page": 2}) in chunks(ex)
    assert MARK not in "".join(texts(ex, "body"))  # first-page-top lines are not repeated


def test_encrypted_pdf(tmp_path):
    import io

    import pypdf
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(docs.pdf([[MARK]]))))
    writer.encrypt(user_password="pw", owner_password="owner", algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    ex = run(tmp_path, "e.pdf", out.getvalue())
    assert ex.type == "application/pdf"
    assert not ex.inspectable and ex.reason == "encrypted"
    assert MARK not in [c.text for c in ex.chunks]


def test_pdf_broken_xref_is_rebuilt(tmp_path):
    data = docs.pdf([[MARK, "正文"]])
    xref = data.rindex(b"startxref")
    broken = data[:xref] + b"startxref\n999999\n%%EOF\n"
    ex = run(tmp_path, "x.pdf", broken)
    # pdfium rebuilds a broken cross-reference table from the objects
    assert ex.inspectable, ex.detail
    assert texts(ex, "first_page_top") == [MARK, "正文"]


def test_broken_pdf(tmp_path):
    data = docs.pdf([[MARK]])
    ex = run(tmp_path, "b.pdf", data[:60])
    assert not ex.inspectable and ex.reason in ("corrupt", "unsupported")


def test_ofd(tmp_path):
    ex = run(tmp_path, "a.ofd", docs.ofd([[MARK, "正文一"], ["第二页"]], custom={"密级": "机密"}, title="通知"))
    assert ex.type == "application/ofd" and ex.inspectable
    assert chunks(ex, "first_page_top")[0] == ("first_page_top", MARK, {"page": 1, "line": 1})
    meta = {c.location["key"]: c.text for c in ex.chunks if c.zone == "metadata"}
    assert meta["密级"] == "机密" and meta.get("Title") == "通知"
    assert any(c.text == "第二页" and c.location["page"] == 2 for c in ex.chunks)


def test_rtf_gbk_and_unicode(tmp_path):
    ex = run(tmp_path, "a.rtf", docs.rtf([MARK, "内部资料"]))
    assert ex.type == "text/rtf" and ex.inspectable
    assert texts(ex, "first_page_top")[:2] == [MARK, "内部资料"]


def test_extract_bytes_matches_extract(tmp_path):
    data = docs.docx([MARK])
    assert [c.text for c in extract_bytes(data, "x.docx", LIMITS).chunks] == \
           [c.text for c in run(tmp_path, "x.docx", data).chunks]


def test_symlink_is_not_followed(tmp_path):
    target = tmp_path / "real.txt"
    target.write_bytes(MARK.encode())
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    with pytest.raises(OSError):
        extract(link, LIMITS)
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    with pytest.raises(OSError):
        extract(loop, LIMITS)


def test_empty_file(tmp_path):
    ex = run(tmp_path, "empty.txt", b"")
    assert ex.chunks == [] and ex.inspectable and ex.type == "application/x-empty"


def test_xlsx_two_column_register_is_body(tmp_path):
    # a register listing levels: none of its cells stands where a marking stands
    ex = run(tmp_path, "r.xlsx", docs.xlsx({"S": [["姓名", "密级"], ["张三", "绝密"], ["李四", "机密"]]}))
    assert texts(ex, "first_page_top") == []
    assert ("body", "绝密", {"sheet": "S", "cell": "B2"}) in chunks(ex)


def test_xlsx_banner_then_register(tmp_path):
    rows = [[MARK], ["二〇二六年名册"], ["序号", "姓名", "密级"], ["1", "张三", "绝密"]]
    ex = run(tmp_path, "b.xlsx", docs.xlsx({"S": rows}))
    assert texts(ex, "first_page_top") == [MARK, "二〇二六年名册"]
    assert "绝密" in texts(ex, "body")
