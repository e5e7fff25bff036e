"""Excel workbooks older than Excel 97 and the text a formula computes: Excel 5.0/95
(BIFF5/7, an OLE container whose strings are bytes in the workbook's code page, GBK
on a Chinese PC), Excel 2 to 4 (the bare record stream as the file), and a formula's
text result (its STRING record) in every version. Written by Gnumeric's ssconvert, a
real spreadsheet program that still writes Excel 95, where it is installed."""
from __future__ import annotations

from pathlib import Path

import pytest

from baomi.common.levels import Level
from tests.scan.extracted import rules, verdict  # noqa: F401  (rules is a fixture)
from tests.support import docs

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
pytestmark = pytest.mark.timeout(300)


def gnumeric(csv: str, exporter: str) -> bytes:
    data = docs.gnumeric_convert(csv.encode("utf-8"), ".csv", exporter)
    if data is None:
        pytest.skip("needs Gnumeric's ssconvert and localedef (zh_CN) to write Excel 95 workbooks")
    return data


def test_excel_95_workbook_in_gbk_is_read_not_garbled(rules) -> None:
    """Regression: BIFF5/7 labels were read as BIFF8's (a flags byte, then UTF-16), so
    GBK's first byte made 机密★1年 into CJK noise and the sheet came back public."""
    ex, ev, level = verdict(rules, gnumeric("机密★1年\n关于工作的通知,三月\n", "excel_biff7"))
    assert ex.inspectable and level == Level.SECRET, [c.text for c in ex.chunks]
    assert [c.text for c in ex.chunks if c.zone != "metadata"][:3] == ["机密★1年", "关于工作的通知", "三月"]
    assert {e.zone for e in ev} == {"first_page_top"}


def test_excel_95_unmarked_twin_is_public(rules) -> None:
    ex, ev, level = verdict(rules, gnumeric("会议纪要\n关于工作的通知,三月\n", "excel_biff7"))
    assert ex.inspectable and level == Level.PUBLIC and ev == []
    assert "会议纪要" in [c.text for c in ex.chunks]


@pytest.mark.parametrize("exporter", ["excel_biff7", "excel_biff8"])
def test_a_marking_a_formula_computes_is_read(rules, exporter: str) -> None:
    """="机密"&"★1年" shows the marking though no cell holds it as text: the formula's
    cached result (its STRING record) is what Excel prints."""
    ex, ev, level = verdict(rules, gnumeric('"=""机密""&""★1年"""\n关于工作的通知\n', exporter))
    assert ex.inspectable and level == Level.SECRET, [c.text for c in ex.chunks]


@pytest.mark.parametrize("version", [2, 3, 4])
def test_excel_2_to_4_worksheet_is_read_in_its_code_page(rules, version: int) -> None:
    data = docs.biff_sheet([["机密★1年"], ["序号", "姓名"], ["1", "张三"]], version=version)
    ex, ev, level = verdict(rules, data)
    assert ex.type == "application/vnd.ms-excel" and ex.inspectable and level == Level.SECRET, (ex.type, ex.detail)
    assert "张三" in [c.text for c in ex.chunks]


def test_excel_4_page_header_is_a_header(rules) -> None:
    data = docs.biff_sheet([["项目", "金额"], ["a", "1"]], header="&L&10秘密★6个月&C2026年预算")
    ex, ev, level = verdict(rules, data)
    assert level == Level.CONFIDENTIAL and {e.zone for e in ev} == {"header"}


def test_excel_4_worksheet_from_the_public_corpus_is_inspectable(rules) -> None:
    f = CORPUS / "python-excel__xlrd/tests/samples/biff4_no_format_no_window2.xls"
    if not f.exists():
        pytest.skip(f"needs the public corpus beside the checkout ({f})")
    ex, _ev, level = verdict(rules, f.read_bytes())
    assert ex.inspectable and level == Level.PUBLIC and {"ID", "TOTAL"} <= {c.text for c in ex.chunks}


def test_a_truncated_worksheet_keeps_what_was_read(rules) -> None:
    """An Excel 4 sheet cut in the middle of its last label: the cells before it are still
    read as cells (not only found by the raw search of what no reader understands)."""
    data = docs.biff_sheet([["机密★1年"], ["关于工作的通知"]])
    cut = data[:data.rfind("关于".encode("gbk")) + 3]
    ex, ev, level = verdict(rules, cut)
    assert ex.type == "application/vnd.ms-excel" and level == Level.SECRET
    assert [e.zone for e in ev] == ["first_page_top"]


@pytest.mark.parametrize("exporter", ["excel_biff7", "excel_biff8"])
def test_a_cell_comment_is_read_in_every_version(rules, exporter: str) -> None:
    """Excel 95 keeps a comment's text in NOTE records (in the code page), Excel 97 in a
    TXO record's CONTINUE: neither was read, so a marking put in a comment went unseen."""
    sheet = ('<table:table table:name="名册"><table:table-row><table:table-cell office:value-type="string">'
             '<office:annotation><text:p>机密★5年</text:p></office:annotation><text:p>会议</text:p>'
             '</table:table-cell></table:table-row></table:table>')
    ods = docs.soffice_convert(docs.odf("spreadsheet", sheet, flat=True), ".fods", "ods")
    if ods is None:
        pytest.skip("needs LibreOffice (soffice) on PATH to write the workbook Gnumeric converts")
    data = docs.gnumeric_convert(ods, ".ods", exporter)
    if data is None:
        pytest.skip("needs Gnumeric's ssconvert and localedef (zh_CN) to write Excel 95 workbooks")
    ex, ev, level = verdict(rules, data)
    assert ex.inspectable and level == Level.SECRET and {e.zone for e in ev} == {"body"}
    assert any(e.location.get("sheet") == "名册" for e in ev)


def _tstr(text: str) -> bytes:
    return bytes([0x17, len(text), 1]) + text.encode("utf-16-le")


@pytest.mark.parametrize("rgce,text", [
    (_tstr("机密") + _tstr("★1年") + b"\x08", "机密★1年"),                              # ="机密"&"★1年"
    (_tstr("绝密★") + b"\x24\x00\x00\x01\xc0" + b"\x08", "绝密★"),                       # ="绝密★"&B1
    (_tstr("秘密") + _tstr("★6个月") + b"\x42\x02\x50\x01", "秘密★6个月"),                 # CONCATENATE(…)
    (_tstr("机密★1年") + b"\x1e\x01\x00" + b"\x0b", None),                                # ="机密★1年"=1
    (_tstr("机密★1年")[:-2], None),                                                      # cut short
    (b"", None),
])
def test_only_a_formula_that_joins_text_is_read_for_its_constants(rgce: bytes, text: str | None) -> None:
    from baomi.agent.scan.extractors.ole import _joined_constants
    assert _joined_constants(rgce) == text
