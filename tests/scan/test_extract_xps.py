"""XPS and OpenXPS, what Windows prints to with "Microsoft XPS Document Writer": read
from the Glyphs of each fixed page. They were `unsupported` (a zip of fonts and XML no
reader understood), so a marked document printed to XPS reached a personal medium with
only an audit. A page that draws its text as outlines (Ghostscript's xpswrite) is not
counted as read."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from baomi.agent.scan.rules import RuleSet
from baomi.common.levels import Level
from tests.support import docs

from .extracted import rules, verdict  # noqa: F401 (rules: a fixture)

XPS = "application/vnd.ms-xpsdocument"
CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"


def test_marking_at_the_top_of_an_xps_first_page_is_found(rules: RuleSet) -> None:
    data = docs.xps([["机密★1年", "关于年度采购计划的通知", "各部门：请按附表执行。"], ["第二页正文"]])
    ex, ev, level = verdict(rules, data)
    assert ex.type == XPS and ex.inspectable and level == Level.SECRET
    assert (ev[0].zone, ev[0].location) == ("first_page_top", {"page": 1, "line": 1})
    lines = [c.text for c in ex.chunks]
    assert lines[:2] == ["机密★1年", "关于年度采购计划的通知"], "pieces are put back in reading order"
    assert ("body", {"page": 2, "line": 1}) in [(c.zone, c.location) for c in ex.chunks if c.text == "第二页正文"]


def test_english_banner_and_title_of_an_xps(rules: RuleSet) -> None:
    ex, ev, level = verdict(rules, docs.xps([["TOP SECRET", "Annual procurement plan"]], title="Plan {draft}"))
    assert level == Level.TOP_SECRET and ev[0].zone == "first_page_top"
    assert ("metadata", "Plan {draft}") in [(c.zone, c.text) for c in ex.chunks]


def test_a_clean_xps_is_public_and_its_fonts_do_not_make_it_uninspectable(rules: RuleSet) -> None:
    ex, ev, level = verdict(rules, docs.xps([["会议室预订规则", "每周一更新"]]))
    assert ex.inspectable and level == Level.PUBLIC and not ev


@pytest.mark.skipif(not shutil.which("gs"), reason="Ghostscript (gs) is needed for its xpswrite device")
def test_an_xps_whose_text_is_drawn_as_outlines_is_not_counted_as_read(rules: RuleSet, tmp_path: Path) -> None:
    (tmp_path / "a.pdf").write_bytes(docs.pdf([["机密★1年", "关于采购的通知"]]))
    subprocess.run(["gs", "-q", "-dNOPAUSE", "-dBATCH", "-sDEVICE=xpswrite", f"-sOutputFile={tmp_path / 'a.xps'}",
                    str(tmp_path / "a.pdf")], check=True, capture_output=True)
    ex, _ev, _level = verdict(rules, (tmp_path / "a.xps").read_bytes())
    assert ex.type == XPS and not ex.inspectable and ex.reason == "unsupported" and "page(s) 1" in ex.detail


def test_xps_written_by_windows_is_read() -> None:
    path = CORPUS / "decalage2__oletools" / "tests" / "test-data" / "other" / "presentation.xps"
    if not path.is_file():
        pytest.skip(f"the public corpus with a Windows-written XPS is not at {CORPUS}")
    from baomi.agent.scan.extract import extract_data
    from .extracted import LIMITS
    ex = extract_data(path.read_bytes(), LIMITS)
    assert ex.inspectable and [c.text for c in ex.chunks if c.zone == "first_page_top"][:3] == [
        "Präsentation", "Oder:", "Macros in Powerpoint"]
