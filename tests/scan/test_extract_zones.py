"""Zones that real documents need: a marking drawn last at the top of a PDF page,
the marking cell of a 公文 header table in docx, text boxes read once, and
markings in document properties (title, subject, keywords)."""
from __future__ import annotations

import pytest

from baomi.common.levels import Level
from baomi.agent.scan.rules import RuleSet
from tests.support import docs

from .extracted import LIMITS, rules, verdict  # noqa: F401 (rules: a fixture)




def test_pdf_marking_drawn_last_at_the_top_is_first_page_top(rules: RuleSet) -> None:
    """Regression: a marking that comes late in the text layer but stands at the
    top of page 1 was reported in zone body."""
    lines = [f"第{i}段正文内容" for i in range(1, 30)]
    ex, ev, level = verdict(rules, docs.pdf([lines], drawn_last="绝密 ★ 启用前"))
    assert level == Level.TOP_SECRET
    assert [(e.zone, e.location["page"]) for e in ev] == [("first_page_top", 1)]
    bare = verdict(rules, docs.pdf([lines], drawn_last="机密"))
    assert bare[2] == Level.SECRET, "a bare level word printed at the top of page 1 is a marking"


def test_pdf_bare_word_low_on_page_one_is_not_a_marking(rules: RuleSet) -> None:
    lines = [f"第{i}段正文内容" for i in range(1, 40)]
    lines[30] = "机密"
    assert verdict(rules, docs.pdf([lines]))[2] == Level.PUBLIC


@pytest.mark.parametrize("table", [[["000001", "机密"], ["特急"]], [["份号：000001", "机密", "特急"]],
                                   [["绝密★启用前"]]], ids=["two-rows", "one-row", "one-cell"])
def test_docx_gongwen_header_table_marking_cell(rules: RuleSet, table: list[list[str]]) -> None:
    """Regression: the marking cell of a header table opening a 公文 was body, so a bare 机密 was missed."""
    _, ev, level = verdict(rules, docs.docx(["关于做好年终工作的通知", "各部门："], table=table))
    assert level >= Level.SECRET and ev[0].zone == "first_page_top" and ev[0].location["table"] is True


@pytest.mark.parametrize("table", [[["名称", "密级"], ["报告", "机密"]],
                                   [["序号", "名称", "密级"], ["1", "报告", "机密"], ["2", "纪要", "秘密"]],
                                   [["名称", "密级"], ["报告", "机密"], ["纪要", "秘密"], ["方案", "绝密"]]],
                         ids=["pair", "wide", "long"])
def test_docx_register_table_at_the_top_is_not_a_marking(rules: RuleSet, table: list[list[str]]) -> None:
    assert verdict(rules, docs.docx(["正文"], table=table))[2] == Level.PUBLIC


def test_docx_table_after_text_stays_body(rules: RuleSet) -> None:
    """Only a table opening the document is a header table; later tables are content."""
    table = "<w:tbl><w:tr><w:tc><w:p><w:r><w:t>机密</w:t></w:r></w:p></w:tc></w:tr></w:tbl>"
    data = docs.docx(["正文"], raw_body="<w:p><w:r><w:t>关于某事的通知</w:t></w:r></w:p>" + table)
    assert verdict(rules, data)[2] == Level.PUBLIC


def test_docx_text_box_with_vml_fallback_read_once(rules: RuleSet) -> None:
    """Regression: Word's DrawingML text box and its VML fallback were both read."""
    box = ('<w:p><w:r><mc:AlternateContent xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006">'
           '<mc:Choice Requires="wps"><w:drawing><wps:txbx xmlns:wps="x"><w:txbxContent><w:p><w:r><w:t>机密★1年</w:t>'
           '</w:r></w:p></w:txbxContent></wps:txbx></w:drawing></mc:Choice><mc:Fallback><w:pict><v:textbox '
           'xmlns:v="urn:schemas-microsoft-com:vml"><w:txbxContent><w:p><w:r><w:t>机密★1年</w:t></w:r></w:p>'
           '</w:txbxContent></v:textbox></w:pict></mc:Fallback></mc:AlternateContent></w:r></w:p>')
    data = docs.docx(["正文"], raw_body=box)
    ex, ev, level = verdict(rules, data)
    assert level == Level.SECRET
    assert [c.text for c in ex.chunks].count("机密★1年") == 1


def test_docx_wordart_read_once_from_its_vml_textpath(rules: RuleSet) -> None:
    """WordArt keeps its text in v:textpath string= (a watermark too); the VML copy
    of a DrawingML shape in mc:Fallback is not read a second time."""
    vml = 'xmlns:v="urn:schemas-microsoft-com:vml"'
    art = (f'<w:p><w:r><w:pict><v:shape {vml}><v:textpath string="机密★1年"/></v:shape></w:pict></w:r></w:p>'
           '<w:p><w:r><mc:AlternateContent xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006">'
           '<mc:Choice Requires="wps"><w:drawing/></mc:Choice><mc:Fallback><w:pict>'
           f'<v:shape {vml}><v:textpath string="秘密★6个月"/></v:shape></w:pict></mc:Fallback></mc:AlternateContent></w:r></w:p>')
    ex, ev, level = verdict(rules, docs.docx(["正文"], raw_body=art))
    texts = [c.text for c in ex.chunks]
    assert level == Level.SECRET and texts.count("机密★1年") == 1 and "秘密★6个月" not in texts


@pytest.mark.parametrize("make", [
    lambda t: docs.docx(["2026年全国统一考试", "数学"], title=t),
    lambda t: docs.pdf([["2026年全国统一考试", "数学"]], title=t),
    lambda t: docs.odf("text", docs.odt_body(["2026年全国统一考试", "数学"]), title=t),
], ids=["docx", "pdf", "odt"])
def test_marking_as_the_document_title_counts_as_metadata(rules: RuleSet, make) -> None:
    """Exam papers carry 绝密★启用前 as their title property: a ★ marking in a
    property is evidence in zone metadata; a body marking still wins."""
    _, ev, level = verdict(rules, make("绝密★启用前"))
    assert level == Level.TOP_SECRET and [(e.rule, e.zone) for e in ev] == [("cn.national.star", "metadata")]


@pytest.mark.parametrize("title", ["机密", "商业秘密保护协议", "秘密花园", "关于机密文件管理的规定", "TOP SECRET"])
def test_title_without_a_star_marking_is_not_evidence(rules: RuleSet, title: str) -> None:
    assert verdict(rules, docs.docx(["正文"], title=title))[2] == Level.PUBLIC


def test_body_marking_wins_over_a_title_marking(rules: RuleSet) -> None:
    assert verdict(rules, docs.docx(["秘密★1年", "正文"], title="绝密★启用前"))[2] == Level.CONFIDENTIAL


def test_docx_wingdings_star_symbol(rules: RuleSet) -> None:
    """Regression: 公文 templates insert ★ as a Wingdings symbol (w:sym F0AB), which never became a star."""
    sym = ('<w:p><w:r><w:t>机密</w:t></w:r><w:r><w:sym w:font="Wingdings" w:char="F0AB"/></w:r>'
           '<w:r><w:t>1年</w:t></w:r></w:p>')
    _, ev, level = verdict(rules, docs.docx(["关于某事的通知"], raw_body=sym))
    assert level == Level.SECRET and ev[0].zone == "first_page_top"


def test_pptx_slide_master_marking_is_a_header(rules: RuleSet) -> None:
    """Regression: slide masters and layouts were not read, so a marking placed on the master was missed."""
    _, ev, level = verdict(rules, docs.pptx([["项目汇报"], ["第二页"]], master=["单击此处编辑母版标题样式", "机密"]))
    assert level == Level.SECRET and [(e.zone, e.location) for e in ev] == [
        ("header", {"part": "ppt/slideMasters/slideMaster1.xml"})]
    assert verdict(rules, docs.pptx([["项目汇报"]], master=["单击此处编辑母版标题样式"]))[2] == Level.PUBLIC


def test_rtf_page_header_and_footer(rules: RuleSet) -> None:
    """Regression: RTF {\\header …} groups were skipped."""
    ex, ev, level = verdict(rules, docs.rtf(["关于某事的通知", "正文"], header="XX集团有限公司\t普通商密★2年",
                                            footer="第 1 页"))
    assert level == Level.CONFIDENTIAL and [(e.rule, e.zone) for e in ev] == [("cn.enterprise.star", "header")]
    assert ("footer", "第 1 页") in [(c.zone, c.text) for c in ex.chunks]


def test_rtf_shape_text_box(rules: RuleSet) -> None:
    """Regression: text in shapes and frames ({\\*\\shpinst … {\\shptxt …}}) was skipped."""
    _, ev, level = verdict(rules, docs.rtf(["关于某事的通知", "正文"], shape="绝密★长期"))
    assert level == Level.TOP_SECRET and ev[0].zone == "first_page_top"


def test_rtf_wingdings_symbol_field_star(rules: RuleSet) -> None:
    _, ev, level = verdict(rules, docs.rtf(["机密★1年", "关于某事的通知"], symbol_star=True))
    assert level == Level.SECRET and ev[0].zone == "first_page_top"
    header = docs.rtf(["正文"], header="绝密★长期").replace(
        b"\\u9733?", b'{\\field{\\*\\fldinst SYMBOL 171 \\\\f "Wingdings"}{\\fldrslt x}}')
    _, ev, level = verdict(rules, header)
    assert level == Level.TOP_SECRET and ev[0].zone == "header"


def test_libreoffice_written_rtf_header(rules: RuleSet) -> None:
    fodt = docs.odf("text", docs.odt_body(["关于做好年终工作的通知", "各部门："]), header="秘密★6个月", flat=True)
    data = docs.soffice_convert(fodt, ".fodt", "rtf")
    if data is None:
        pytest.skip("needs LibreOffice (soffice) on PATH to write RTF")
    _, ev, level = verdict(rules, data)
    assert level == Level.CONFIDENTIAL and ev[0].zone == "header"


def test_xls_sheet_header_record(rules: RuleSet) -> None:
    """Regression: BIFF HEADER/FOOTER records (`&L&10机密★1年`) were not read."""
    ex, ev, level = verdict(rules, docs.xls({"预算": [["项目", "金额"], ["a", "1"]]}, header="&L&10机密★1年&C2026年预算&R&P"))
    assert level == Level.SECRET and [(e.zone, e.location) for e in ev] == [("header", {"sheet": "预算"})]
    assert ("header", "2026年预算") in [(c.zone, c.text) for c in ex.chunks]
