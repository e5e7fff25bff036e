"""The same marked documents written by real office tools — LibreOffice (odt,
docx, doc, rtf, pdf) and pandoc (html, docx, odt from markdown) — must all come
out at the same level, from the same zone, and their unmarked twins public."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from baomi.common.levels import Level
from baomi.agent.scan.extract import extract_data
from baomi.agent.scan.limits import Limits
from baomi.agent.scan.rules import RuleSet
from tests.support import docs

pytestmark = pytest.mark.timeout(600)
BODY = ["关于做好年终工作的通知", "各部门：", "根据上级要求，现将有关事项通知如下。", "本协议所称商业秘密，是指不为公众所知悉的信息。"]
FORMATS = ["odt", "docx", "doc", "rtf", "pdf", "fodt"]


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return RuleSet.load([])


def written(first: list[str], to: str, header: str | None = None) -> bytes:
    data = docs.soffice_convert(docs.odf("text", docs.odt_body(first + BODY), header=header, flat=True), ".fodt", to)
    if data is None:
        pytest.skip("needs LibreOffice (soffice) on PATH to write real documents")
    return data


def level_and_zones(rules: RuleSet, data: bytes) -> tuple[Level, set[str], bool]:
    ex = extract_data(data, Limits())
    ev = rules.evaluate(ex.chunks)
    return rules.level(ev), {e.zone for e in ev}, ex.inspectable


@pytest.mark.parametrize("to", FORMATS)
@pytest.mark.parametrize("marking,level", [("机密★1年", Level.SECRET), ("绝密★启用前", Level.TOP_SECRET),
                                           ("核心商密★5年", Level.SECRET)])
def test_libreoffice_marking_at_the_top(rules: RuleSet, to: str, marking: str, level: Level) -> None:
    got, zones, ok = level_and_zones(rules, written([marking], to))
    assert ok and got == level and "first_page_top" in zones, (to, got, zones)


@pytest.mark.parametrize("to", FORMATS)
def test_libreoffice_marking_in_the_page_header(rules: RuleSet, to: str) -> None:
    got, zones, ok = level_and_zones(rules, written(["会议纪要"], to, header="秘密★6个月"))
    assert ok and got == Level.CONFIDENTIAL, (to, got, zones)
    assert zones & {"header", "first_page_top"}, zones  # a PDF prints the page header as the first line


@pytest.mark.parametrize("to", FORMATS)
@pytest.mark.parametrize("first", ["bullet", "tab"])
def test_libreoffice_marking_as_a_bullet_or_before_a_tab(rules: RuleSet, to: str, first: str) -> None:
    """Regression: a PDF or RTF gives a list's bullet as the private-use code point of its
    symbol font (U+F095 for OpenSymbol's •), which hid `• 机密★1年`; and a PDF gives
    `机密★1年<TAB>编号：001` as `机密★1 年 编号：001`, whose lead was cut at `1 年`."""
    if first == "bullet":
        line = "<text:list><text:list-item><text:p>机密★1年</text:p></text:list-item></text:list>"
    else:
        line = "<text:p>机密★1年<text:tab/>编号：001</text:p>"
    body = line + "".join(f"<text:p>{t}</text:p>" for t in BODY)
    data = docs.soffice_convert(docs.odf("text", body, flat=True), ".fodt", to)
    if data is None:
        pytest.skip("needs LibreOffice (soffice) on PATH to write real documents")
    got, zones, ok = level_and_zones(rules, data)
    assert ok and got == Level.SECRET and zones == {"first_page_top"}, (to, got, zones)


@pytest.mark.parametrize("to", FORMATS)
def test_libreoffice_unmarked_twin_is_public(rules: RuleSet, to: str) -> None:
    got, zones, ok = level_and_zones(rules, written(["会议纪要"], to, header="XX集团有限公司"))
    assert ok and got == Level.PUBLIC, (to, zones)


MARKDOWN = "**机密★1年**\n\n# 关于做好年终工作的通知\n\n各部门：\n\n> 根据上级要求，现将有关事项通知如下。\n"


@pytest.mark.parametrize("to", ["html", "docx", "odt"])
def test_pandoc_from_markdown(rules: RuleSet, tmp_path: Path, to: str) -> None:
    if shutil.which("pandoc") is None:
        pytest.skip("needs pandoc on PATH to write documents from markdown")
    src = tmp_path / "a.md"
    src.write_text(MARKDOWN, encoding="utf-8")
    out = tmp_path / f"a.{to}"
    subprocess.run(["pandoc", "-s", "--metadata", "title=通知", str(src), "-o", str(out)], check=True, timeout=120)
    got, zones, ok = level_and_zones(rules, out.read_bytes())
    assert ok and got == Level.SECRET and "first_page_top" in zones, (to, zones)
    assert level_and_zones(rules, src.read_bytes())[0] == Level.SECRET, "the markdown itself, read as text"


def outlined(pdf: bytes, tmp_path: Path) -> bytes:
    """The PDF with every glyph turned into a drawn outline (no text layer, no picture),
    as Ghostscript writes it with -dNoOutputFonts and print shops ask for."""
    if not shutil.which("gs"):
        pytest.skip("needs Ghostscript (gs) to turn text into outlines")
    (tmp_path / "in.pdf").write_bytes(pdf)
    subprocess.run(["gs", "-q", "-dNOPAUSE", "-dBATCH", "-dSAFER", "-dNoOutputFonts", "-sDEVICE=pdfwrite",
                    f"-sOutputFile={tmp_path / 'out.pdf'}", str(tmp_path / "in.pdf")], check=True, timeout=120)
    return (tmp_path / "out.pdf").read_bytes()


def test_pdf_with_its_text_drawn_as_outlines_is_read_by_ocr(rules: RuleSet, tmp_path: Path) -> None:
    """Such a PDF has no text layer and no picture: it came back public and inspectable,
    although every reader shows its marking."""
    from baomi.agent.scan import ocr
    if ocr.missing("chi_sim+eng"):
        pytest.skip(ocr.missing("chi_sim+eng"))
    data = outlined(written(["机密★1年"], "pdf"), tmp_path)
    ex = extract_data(data, Limits())
    assert not any(c.location.get("ocr") is None and c.zone != "metadata" for c in ex.chunks)  # no text layer
    ev = rules.evaluate(ex.chunks)
    assert rules.level(ev) == Level.SECRET and ex.inspectable
    assert any(e.zone == "first_page_top" and e.location.get("ocr") for e in ev)
    # with OCR off the page cannot count as read
    ex = extract_data(data, Limits(ocr=False))
    assert not ex.inspectable and ex.reason == "unsupported" and "no text layer" in ex.detail


FOOTED_SLIDES = """<?xml version="1.0" encoding="UTF-8"?>
<office:document xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"
 xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"
 xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0"
 xmlns:presentation="urn:oasis:names:tc:opendocument:xmlns:presentation:1.0"
 xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0" office:version="1.3"
 office:mimetype="application/vnd.oasis.opendocument.presentation">
<office:automatic-styles><style:style style:name="dp1" style:family="drawing-page">
 <style:drawing-page-properties presentation:display-footer="true"/></style:style></office:automatic-styles>
<office:master-styles><style:master-page style:name="Default" draw:style-name="dp1">
 <draw:frame presentation:class="footer" svg:x="9cm" svg:y="19cm" svg:width="9cm" svg:height="1.4cm">
 <draw:text-box><text:p><presentation:footer/></text:p></draw:text-box></draw:frame>
 <draw:frame draw:layer="backgroundobjects" svg:x="1cm" svg:y="0.5cm" svg:width="6cm" svg:height="1.2cm"><draw:text-box><text:p>MASTER</text:p>
 </draw:text-box></draw:frame></style:master-page>
</office:master-styles>
<office:body><office:presentation>
 <presentation:footer-decl presentation:name="ftr1">FOOTER</presentation:footer-decl>
 <draw:page draw:name="page1" draw:master-page-name="Default" presentation:use-footer-name="ftr1" draw:style-name="dp1">
 <draw:frame svg:x="2cm" svg:y="2cm" svg:width="20cm" svg:height="3cm"><draw:text-box><text:p>关于工作的通知</text:p>
 </draw:text-box></draw:frame></draw:page>
</office:presentation></office:body></office:document>"""


def slides(footer: str, to: str) -> bytes:
    data = docs.soffice_convert(FOOTED_SLIDES.replace("FOOTER", footer).replace("MASTER", "XX集团").encode(), ".fodp",
                                to)
    if data is None:
        pytest.skip("needs LibreOffice (soffice) on PATH to write real documents")
    return data


@pytest.mark.parametrize("to", ["ppt", "pptx", "odp"])
def test_libreoffice_slides_with_the_marking_in_the_footer(rules: RuleSet, to: str) -> None:
    """The footer every slide prints (Impress's and PowerPoint's Header and Footer dialog):
    in a ppt it is a CString of the slide's HeadersFootersContainer, in an odp a
    presentation:footer-decl; neither was read, so the presentation was public."""
    got, zones, ok = level_and_zones(rules, slides("机密★1年", to))
    assert ok and got == Level.SECRET, (to, got, zones)
    assert level_and_zones(rules, slides("XX集团有限公司", to))[0] == Level.PUBLIC


SHEET_ROW = '<table:table-row><table:table-cell office:value-type="string"><text:p>会议</text:p></table:table-cell></table:table-row>'


@pytest.mark.parametrize("to", ["xlsx", "ods", "xls"])
@pytest.mark.parametrize("where", ["comment", "text_box"])
def test_libreoffice_sheet_with_the_marking_in_a_comment_or_a_text_box(rules: RuleSet, where: str, to: str) -> None:
    """xlsx comments (xl/comments1.xml) and a sheet's text boxes (xl/drawings), an ods
    cell's comment (joined to the cell's text) and shapes (table:shapes), and an xls
    sheet's comments and text boxes (TXO records and their CONTINUE) were not read: such
    a workbook was public."""
    if where == "comment":
        body = ('<table:table table:name="S"><table:table-row><table:table-cell office:value-type="string">'
                '<office:annotation><text:p>机密★5年</text:p></office:annotation><text:p>会议</text:p>'
                '</table:table-cell></table:table-row></table:table>')
    else:
        body = ('<table:table table:name="S"><table:shapes><draw:frame svg:width="5cm" svg:height="1cm" '
                'svg:x="1cm" svg:y="1cm"><draw:text-box><text:p>机密★5年</text:p></draw:text-box></draw:frame>'
                f'</table:shapes>{SHEET_ROW}</table:table>')
    data = docs.soffice_convert(docs.odf("spreadsheet", body, flat=True), ".fods", to)
    if data is None:
        pytest.skip("needs LibreOffice (soffice) on PATH to write real documents")
    got, zones, ok = level_and_zones(rules, data)
    assert ok and got == Level.SECRET and zones == {"body"}, (got, zones)


def libreoffice_sheet(csv: str, to: str) -> bytes:
    data = docs.soffice_convert(csv.encode("utf-8"), ".csv", to)
    if data is None:
        pytest.skip("needs LibreOffice (soffice) on PATH to write real documents")
    return data


@pytest.mark.parametrize("to", ["xls", "xlsx", "ods"])
@pytest.mark.parametrize("formula", ['="机密"&"★1年"', '=CONCATENATE("机密";"★";"1年")'])
def test_libreoffice_sheet_whose_marking_a_formula_joins(rules: RuleSet, to: str, formula: str) -> None:
    """Regression: LibreOffice's xls stores no text result for a formula (it writes the
    number 0, where Excel writes a STRING record), so ="机密"&"★1年" in an xls written
    by LibreOffice was public; a formula that only joins text is now read for the text
    it joins. xlsx and ods carry the result itself."""
    cell = '"' + formula.replace(";", ",").replace('"', '""') + '"'
    ex = extract_data(libreoffice_sheet(f"{cell}\n关于工作的通知\n", to), Limits())
    ev = rules.evaluate(ex.chunks)
    assert ex.inspectable and rules.level(ev) == Level.SECRET, [c.text for c in ex.chunks]
    assert [(e.zone, e.location.get("cell")) for e in ev] == [("first_page_top", "A1")], ev


def test_libreoffice_xls_formula_that_is_not_a_join_is_not_guessed(rules: RuleSet) -> None:
    """=IF(1>2,"机密★1年","") shows nothing: only a formula that does nothing but join
    text is read for its constants, so this sheet stays public."""
    ex = extract_data(libreoffice_sheet('"=IF(1>2,""机密★1年"","""")"\n关于工作的通知\n', "xls"), Limits())
    assert ex.inspectable and rules.level(rules.evaluate(ex.chunks)) == Level.PUBLIC
    assert "关于工作的通知" in [c.text for c in ex.chunks]


WATERMARK = ('<text:p><draw:custom-shape draw:name="PowerPlusWaterMarkObject1" text:anchor-type="paragraph" '
             'svg:width="10cm" svg:height="3cm" svg:x="3cm" svg:y="8cm"><text:p>机密★1年</text:p>'
             '<draw:enhanced-geometry svg:viewBox="0 0 21600 21600" draw:type="fontwork-plain-text" draw:text-path="true" '
             'draw:enhanced-path="M 0 0 L 21600 0 N M 0 21600 L 21600 21600 N"/></draw:custom-shape></text:p>')
HEADER_TABLE = ('<table:table><table:table-column table:number-columns-repeated="2"/><table:table-row>'
                '<table:table-cell><text:p>XX集团有限公司</text:p></table:table-cell>'
                '<table:table-cell><text:p>机密★1年</text:p></table:table-cell></table:table-row></table:table>')
HEADER_FRAME = ('<text:p><draw:frame text:anchor-type="paragraph" svg:width="4cm" svg:height="1cm" svg:x="12cm" '
                'svg:y="0cm"><draw:text-box><text:p>机密★1年</text:p></draw:text-box></draw:frame>XX集团</text:p>')


@pytest.mark.parametrize("to,header", [(to, h) for to in ["odt", "docx", "rtf", "fodt"]
                                       for h in ("watermark", "table", "frame")]
                         + [("doc", "table"), ("doc", "frame")])
def test_libreoffice_marking_as_a_watermark_or_in_a_header_table_or_frame(rules: RuleSet, to: str,
                                                                          header: str) -> None:
    """Regression: a watermark (WordArt in the page header: docx's v:textpath string=,
    RTF's gtextUNICODE shape property), an RTF header's table (its cells came out joined
    by `|`) and a frame in an RTF header were not read, so each document was public.
    A PDF draws a watermark as outlines: only OCR could see it there. A .doc keeps
    WordArt in its drawing records, which are not read."""
    xml = {"watermark": WATERMARK, "table": HEADER_TABLE, "frame": HEADER_FRAME}[header]
    doc = docs.odf("text", "".join(f"<text:p>{t}</text:p>" for t in ["会议纪要"] + BODY), flat=True).decode()
    doc = doc.replace('<style:master-page style:name="Standard">',
                      f'<style:master-page style:name="Standard"><style:header>{xml}</style:header>', 1)
    data = docs.soffice_convert(doc.encode(), ".fodt", to)
    if data is None:
        pytest.skip("needs LibreOffice (soffice) on PATH to write real documents")
    got, zones, ok = level_and_zones(rules, data)
    assert ok and got == Level.SECRET and zones & {"header", "body"}, (to, got, zones)
