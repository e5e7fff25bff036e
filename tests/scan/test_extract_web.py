"""HTML/XHTML, e-mail (.eml) and web archives (.mht): text without markup, the
Subject at the top, bodies in any transfer encoding and charset, attachments
scanned as members."""
from __future__ import annotations

import pytest

from baomi.common.levels import Level
from baomi.agent.scan.extract import extract_data
from baomi.agent.scan.rules import RuleSet
from tests.support import docs

from .extracted import LIMITS, rules, verdict  # noqa: F401 (rules: a fixture)
STYLE = "<style>body { font-family: SimSun; }\n.a { color: red; }\n" + "p { margin: 0 }\n" * 20 + "</style>"




def page(body: str, charset: str = "utf-8", title: str = "通知") -> str:
    return (f'<!DOCTYPE html><html><head><meta charset="{charset}"><title>{title}</title>{STYLE}'
            f'<script>var secret = "机密★1年";</script></head><body>{body}</body></html>')


def test_html_marking_is_first_page_top_without_css(rules: RuleSet) -> None:
    ex, ev, level = verdict(rules, page("<p>机密★1年</p><h1>关于做好年终工作的通知</h1><p>各部门：</p>").encode())
    assert ex.type == "text/html" and ex.inspectable and level == Level.SECRET
    assert [(e.zone, e.location) for e in ev] == [("first_page_top", {"line": 1})]
    texts = [c.text for c in ex.chunks]
    assert not any("font-family" in t or "var secret" in t for t in texts), "CSS and scripts are not text"
    assert ("metadata", "通知") in [(c.zone, c.text) for c in ex.chunks]


def test_html_gbk_declared_charset_and_table(rules: RuleSet) -> None:
    body = "<div><b>秘密</b>&#9733;6个月</div><table><tr><td>名称</td><td>密级</td></tr><tr><td>报告</td><td>机密</td></tr></table>"
    ex, ev, level = verdict(rules, page(body, "gb2312").encode("gbk"))
    assert level == Level.CONFIDENTIAL and [e.zone for e in ev] == ["first_page_top"]
    assert any(c.text == "报告" and c.location.get("table") for c in ex.chunks), "table cells are body, one a line"


def test_xhtml_is_read_as_html(rules: RuleSet) -> None:
    data = ('<?xml version="1.0" encoding="utf-8"?>\n<html xmlns="http://www.w3.org/1999/xhtml"><head><title>t</title>'
            '</head><body><p>绝密★启用前</p><p>试卷</p></body></html>').encode()
    ex, ev, level = verdict(rules, data)
    assert ex.type == "application/xhtml+xml" and level == Level.TOP_SECRET and ev[0].zone == "first_page_top"


def test_html_prose_about_levels_is_public(rules: RuleSet) -> None:
    body = "<p>根据《中华人民共和国保守国家秘密法》，国家秘密的密级分为绝密、机密、秘密三级。</p><p>文件应标注为‘秘密★1年’后印发。</p>"
    ex, ev, level = verdict(rules, page(body, title="保密知识").encode())
    assert ex.inspectable and ev == [] and level == Level.PUBLIC


@pytest.mark.parametrize("charset,cte", [("utf-8", "base64"), ("gbk", "quoted-printable"), ("gb18030", "base64")])
def test_eml_body_in_any_charset_and_encoding(rules: RuleSet, charset: str, cte: str) -> None:
    data = docs.eml("年终工作安排", "机密★1年\n各部门：\n请做好年终工作。\n", charset=charset, cte=cte)
    ex, ev, level = verdict(rules, data)
    assert ex.type == "message/rfc822" and ex.inspectable, ex.detail
    assert level == Level.SECRET and ev[0].zone == "first_page_top"
    assert ("first_page_top", "年终工作安排") in [(c.zone, c.text) for c in ex.chunks], "the Subject, RFC 2047 decoded"


@pytest.mark.parametrize("raw", [False, True], ids=["rfc2047", "raw-8bit"])
def test_eml_subject_marking_opens_the_first_page(rules: RuleSet, raw: bool) -> None:
    data = docs.eml("绝密★启用前", "考试安排见附件。", charset="gbk", raw_subject=raw)
    _, ev, level = verdict(rules, data)
    assert level == Level.TOP_SECRET
    assert [(e.zone, e.location) for e in ev] == [("first_page_top", {"header": "Subject"})]


def test_eml_html_alternative_read_once(rules: RuleSet) -> None:
    data = docs.eml("通知", "秘密★6个月\n正文", html_body="<p><b>秘密★6个月</b></p><p>正文</p>")
    _, ev, level = verdict(rules, data)
    assert level == Level.CONFIDENTIAL and len(ev) == 1, "one text in two renderings gives one piece of evidence"


def test_eml_attachments_are_members(rules: RuleSet) -> None:
    data = docs.eml("材料", "见附件", attachments={"方案.docx": docs.docx(["机密★5年", "方案"]),
                                                  "说明.txt": "普通说明\n".encode()})
    ex, ev, level = verdict(rules, data)
    assert ex.inspectable and level == Level.SECRET
    assert ev[0].location["member"] == "方案.docx" and ev[0].zone == "first_page_top"


def test_eml_with_encrypted_attachment_is_not_fully_inspected(rules: RuleSet) -> None:
    data = docs.eml("材料", "见附件", attachments={"a.7z": docs.sevenzip({"x.txt": b"x"}, password="pw")})
    ex = extract_data(data, LIMITS)
    assert (ex.inspectable, ex.reason) == (False, "encrypted")


def test_mht_page_read_as_html(rules: RuleSet) -> None:
    data = docs.mht(page("<p>机密★1年</p><p>关于某事的通知</p>", "gbk"), charset="gbk")
    ex, ev, level = verdict(rules, data)
    assert ex.type == "message/rfc822" and level == Level.SECRET and ev[0].zone == "first_page_top"
    assert not any("font-family" in c.text for c in ex.chunks)


def test_eml_prose_is_public(rules: RuleSet) -> None:
    data = docs.eml("商业秘密保护协议", "本协议所称商业秘密，是指不为公众所知悉的信息。\nThe secret to good bread is patience.\n")
    ex, ev, level = verdict(rules, data)
    assert ex.inspectable and ev == [] and level == Level.PUBLIC


def test_pandoc_written_html(rules: RuleSet, tmp_path) -> None:
    import shutil
    import subprocess
    if shutil.which("pandoc") is None:
        pytest.skip("needs pandoc on PATH to write HTML from markdown")
    src = tmp_path / "a.md"
    src.write_text("**机密★1年**\n\n# 关于某事的通知\n\n各部门：\n", encoding="utf-8")
    out = tmp_path / "a.html"
    subprocess.run(["pandoc", "-s", "--metadata", "title=通知", str(src), "-o", str(out)], check=True, timeout=60)
    ex, ev, level = verdict(rules, out.read_bytes())
    assert level == Level.SECRET and ev[0].zone == "first_page_top"
