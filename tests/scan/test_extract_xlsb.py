"""Excel binary workbooks (.xlsb): read like xlsx. They were `unsupported` (a zip of
parts no reader understood), so a marked sheet saved as .xlsb reached a personal medium
with only an audit. No tool in Debian writes the format: tests/support/docs.xlsb writes
it record by record, and the workbooks Excel wrote in the public corpus are read too."""
from __future__ import annotations

from pathlib import Path

import pytest

from baomi.agent.scan.rules import RuleSet
from baomi.common.levels import Level
from tests.support import docs

from .extracted import rules, verdict  # noqa: F401 (rules: a fixture)

XLSB = "application/vnd.ms-excel.sheet.binary.macroenabled.12"
CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
REGISTER = [["序号", "名称", "数量"], ["1", "设备", "3"]]


@pytest.mark.parametrize("inline", [False, True], ids=["shared strings", "inline strings"])
def test_marked_banner_of_an_xlsb_sheet_is_found_in_its_cell(rules: RuleSet, inline: bool) -> None:
    data = docs.xlsb({"采购清单": [["机密★1年"], *REGISTER], "附表": [["备注"]]}, inline=inline)
    ex, ev, level = verdict(rules, data)
    assert ex.type == XLSB and ex.inspectable and level == Level.SECRET
    assert (ev[0].zone, ev[0].location) == ("first_page_top", {"sheet": "采购清单", "cell": "A1"})
    texts = {(c.location.get("sheet"), c.location.get("cell")): c.text for c in ex.chunks}
    assert texts[("采购清单", "B3")] == "设备" and texts[("附表", "A1")] == "备注"


def test_marking_in_an_xlsb_page_header_is_found(rules: RuleSet) -> None:
    ex, ev, level = verdict(rules, docs.xlsb({"表1": REGISTER}, header="秘密★6个月"))
    assert level == Level.CONFIDENTIAL and ev[0].zone == "header"
    assert ev[0].location == {"sheet": "表1", "part": "oddHeader"}


def test_xlsb_comment_is_read_as_body(rules: RuleSet) -> None:
    ex, _ev, level = verdict(rules, docs.xlsb({"表1": REGISTER}, comment="请核对数量"))
    assert level == Level.PUBLIC and ex.inspectable
    assert [(c.zone, c.location) for c in ex.chunks if c.text == "请核对数量"] == [
        ("body", {"part": "xl/comments1.bin", "paragraph": 1})]


def test_a_clean_xlsb_is_public_and_inspectable(rules: RuleSet) -> None:
    ex, ev, level = verdict(rules, docs.xlsb({"表1": REGISTER}))
    assert ex.inspectable and level == Level.PUBLIC and not ev


@pytest.mark.parametrize("cut", [0.5, 0.9])
def test_a_damaged_xlsb_sheet_is_corrupt_not_a_crash(rules: RuleSet, cut: float) -> None:
    import io
    import zipfile
    good = zipfile.ZipFile(io.BytesIO(docs.xlsb({"表1": [["机密★1年"], *REGISTER]})))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for info in good.infolist():
            body = good.read(info)
            z.writestr(info.filename, body[:int(len(body) * cut)] if info.filename.endswith("sheet1.bin") else body)
    ex, _ev, _level = verdict(rules, out.getvalue())
    assert not ex.inspectable and ex.reason == "corrupt" and "sheet1.bin" in ex.detail


def test_xlsb_workbooks_written_by_excel_are_read(rules: RuleSet) -> None:
    found = sorted(CORPUS.glob("**/*.xlsb")) if CORPUS.is_dir() else []
    if not found:
        pytest.skip(f"the public corpus with Excel's .xlsb files is not at {CORPUS}")
    for path in found:
        ex, _ev, _level = verdict(rules, path.read_bytes())
        assert ex.inspectable or ex.reason == "encrypted", (path.name, ex.reason, ex.detail)
    ex, _ev, _level = verdict(rules, next(p for p in found if p.name == "embedded-simple-2007.xlsb").read_bytes())
    assert any(c.location.get("cell") == "A1" and c.text.startswith("This spreadsheet contains") for c in ex.chunks)
