"""SVG drawings: their text elements and labels are read. An SVG was `unsupported`
(only its raw bytes searched), so a marked diagram reached a personal medium with an
audit; one whose words are outlines (pdftocairo's) is still not counted as read."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from baomi.agent.scan.rules import RuleSet
from baomi.common.levels import Level
from tests.support import docs

from .extracted import rules, verdict  # noqa: F401 (rules: a fixture)

INKSCAPE = ('<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="800" height="600">'
            '<title>网络拓扑图</title><rect width="800" height="600" fill="#fff"/>'
            '<text x="20" y="30"><tspan>机密</tspan><tspan>★1年</tspan></text>'
            '<text x="20" y="70">核心交换机 A 区</text><path d="M 10,10 L 100,100"/></svg>')
DRAWIO = ('<svg xmlns="http://www.w3.org/2000/svg" xmlns:xhtml="http://www.w3.org/1999/xhtml"><g><rect width="120" '
          'height="40"/><switch><foreignObject width="120" height="40"><xhtml:div>秘密★6个月</xhtml:div></foreignObject>'
          '<text x="60" y="24">秘密★6个...</text></switch></g><style>.a{fill:red}</style></svg>')


def test_marked_svg_drawing_is_read_from_its_text_elements(rules: RuleSet) -> None:
    ex, ev, level = verdict(rules, INKSCAPE.encode())
    assert ex.type == "image/svg+xml" and ex.inspectable and level == Level.SECRET
    assert (ev[0].zone, ev[0].location) == ("first_page_top", {"line": 1})
    assert ("metadata", "网络拓扑图") in [(c.zone, c.text) for c in ex.chunks]


def test_drawio_labels_in_foreign_objects_are_read(rules: RuleSet) -> None:
    ex, ev, level = verdict(rules, DRAWIO.encode())
    assert level == Level.CONFIDENTIAL and ".a{fill:red}" not in [c.text for c in ex.chunks]


def test_a_clean_svg_is_public_and_inspectable(rules: RuleSet) -> None:
    ex, ev, level = verdict(rules, INKSCAPE.replace("机密", "示意").encode())
    assert ex.inspectable and level == Level.PUBLIC


@pytest.mark.skipif(not shutil.which("pdftocairo"), reason="pdftocairo (poppler-utils) is needed")
def test_an_svg_whose_words_are_outlines_is_not_counted_as_read(rules: RuleSet, tmp_path: Path) -> None:
    (tmp_path / "a.pdf").write_bytes(docs.pdf([["机密★1年", "关于采购的通知"]]))
    subprocess.run(["pdftocairo", "-svg", str(tmp_path / "a.pdf"), str(tmp_path / "a.svg")], check=True,
                   capture_output=True)
    ex, _ev, _level = verdict(rules, (tmp_path / "a.svg").read_bytes())
    assert ex.type == "image/svg+xml" and not ex.inspectable and ex.reason == "unsupported"


def test_an_svg_with_a_dtd_is_refused_not_expanded(rules: RuleSet) -> None:
    bomb = ('<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "机密★1年机密★1年"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
            '<svg xmlns="http://www.w3.org/2000/svg"><text>&b;&b;&b;</text></svg>')
    ex, _ev, _level = verdict(rules, bomb.encode())
    assert not ex.inspectable and ex.reason == "corrupt" and "refused XML" in ex.detail
