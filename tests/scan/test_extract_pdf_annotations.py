"""A PDF's annotations: a 机密 stamp put on with a reader's stamp tool, a text box
(FreeText), a form field's value, Acrobat's standard TOP SECRET stamp. None of them is
text of the page, and each left a marked PDF public. The PDFs are the generated ones
of tests/support/docs.py with annotations written by pikepdf."""
from __future__ import annotations

import io

import pikepdf
import pytest

from baomi.agent.scan.rules import RuleSet
from baomi.common.levels import Level
from tests.support import docs

from .extracted import rules, verdict  # noqa: F401 (rules: a fixture)

PAGE = docs.pdf([["会议纪要", "正文内容"]])


def annotated(**entries: object) -> bytes:
    pdf = pikepdf.open(io.BytesIO(PAGE))
    annot = pdf.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.Annot, **entries))
    if entries.get("Subtype") == pikepdf.Name.Widget:   # a form field, reachable from the form as Acrobat wants
        pdf.Root.AcroForm = pikepdf.Dictionary(Fields=pikepdf.Array([annot]))
    pdf.pages[0].Annots = pdf.make_indirect(pikepdf.Array([annot]))
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def top_rect() -> list[float]:
    with pikepdf.open(io.BytesIO(PAGE)) as pdf:
        height = float(pdf.pages[0].mediabox[3])
    return [50, height - 60, 300, height - 20]


@pytest.mark.parametrize("case, entries, level, zone", [
    ("stamp at the top", dict(Subtype=pikepdf.Name.Stamp, Contents=pikepdf.String("机密")), Level.SECRET,
     "first_page_top"),
    ("stamp low on the page", dict(Subtype=pikepdf.Name.Stamp, Contents=pikepdf.String("绝密"), Rect=[50, 60, 200, 90]),
     Level.TOP_SECRET, "header"),
    ("Acrobat's TopSecret stamp", dict(Subtype=pikepdf.Name.Stamp, Name=pikepdf.Name("/TopSecret")),
     Level.TOP_SECRET, "first_page_top"),
    ("text box", dict(Subtype=pikepdf.Name.FreeText, Contents=pikepdf.String("秘密★6个月"),
                      DA=pikepdf.String("/Helv 12 Tf 0 g")), Level.CONFIDENTIAL, "first_page_top"),
    ("form field value", dict(Subtype=pikepdf.Name.Widget, FT=pikepdf.Name.Tx, T=pikepdf.String("密级"),
                              V=pikepdf.String("机密★1年"), Rect=[50, 300, 300, 320]), Level.SECRET, "body"),
])
def test_marking_in_an_annotation_is_found(rules: RuleSet, case: str, entries: dict, level: Level, zone: str) -> None:
    entries.setdefault("Rect", top_rect())
    ex, ev, got = verdict(rules, annotated(**entries))
    assert got == level and ex.inspectable, case
    assert ev[0].zone == zone and ev[0].location["page"] == 1 and "annotation" in ev[0].location, ev


@pytest.mark.parametrize("case, entries", [
    ("a reviewer's note about levels", dict(Subtype=pikepdf.Name.Text, Contents=pikepdf.String("请标注为机密★1年后再发"))),
    ("an Approved stamp", dict(Subtype=pikepdf.Name.Stamp, Name=pikepdf.Name("/Approved"))),
    ("a text box of prose", dict(Subtype=pikepdf.Name.FreeText, Contents=pikepdf.String("本单位保密工作要点"))),
])
def test_unmarked_annotations_stay_public(rules: RuleSet, case: str, entries: dict) -> None:
    ex, ev, got = verdict(rules, annotated(Rect=top_rect(), **entries))
    assert got == Level.PUBLIC and ev == [] and ex.inspectable, case
