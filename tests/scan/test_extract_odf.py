"""OpenDocument (odt/ods/odp and the flat fodt/fods/fodp): the text reaches the
rules in the zones a docx would give, and an .odt is never taken for a plain
zip, for SVG, or made uninspectable by its thumbnail."""
from __future__ import annotations

import pytest

from baomi.common.levels import Level
from baomi.agent.scan.extract import extract_data
from baomi.agent.scan.rules import RuleSet
from tests.support import docs

from .extracted import LIMITS, rules, verdict  # noqa: F401 (rules: a fixture)




@pytest.mark.parametrize("flat", [False, True], ids=["odt", "fodt"])
def test_odt_marking_at_the_top_is_first_page_top(rules: RuleSet, flat: bool) -> None:
    data = docs.odf("text", docs.odt_body(["机密★1年", "关于做好年终工作的通知", "各部门："]), flat=flat)
    ex, ev, level = verdict(rules, data)
    assert ex.type == "application/vnd.oasis.opendocument.text" + ("-flat-xml" if flat else "")
    assert ex.inspectable, ex.detail
    assert level == Level.SECRET
    assert [(e.zone, e.location) for e in ev] == [("first_page_top", {"paragraph": 1})]


def test_odt_thumbnail_does_not_make_it_uninspectable(rules: RuleSet) -> None:
    """Regression: the thumbnail PNG made every .odt 'not inspectable' (blocked)."""
    ex, ev, level = verdict(rules, docs.odf("text", docs.odt_body(["会议纪要", "各位同事："])))
    assert ex.inspectable and ex.reason is None and level == Level.PUBLIC


@pytest.mark.parametrize("flat", [False, True], ids=["odt", "fodt"])
def test_odt_header_footer_from_master_pages(rules: RuleSet, flat: bool) -> None:
    _, ev, level = verdict(rules, docs.odf("text", docs.odt_body(["正文"]), header="秘密★6个月", flat=flat))
    assert level == Level.CONFIDENTIAL and ev[0].zone == "header"
    assert ev[0].location["part"] == ("master-styles" if flat else "styles.xml")
    _, ev, _ = verdict(rules, docs.odf("text", docs.odt_body(["正文"]), footer="绝密★长期", flat=flat))
    assert [(e.zone, e.level) for e in ev] == [("footer", Level.TOP_SECRET)]


def test_odt_frame_note_and_table(rules: RuleSet) -> None:
    _, ev, level = verdict(rules, docs.odf("text", docs.odt_body(["关于某事的报告"], frame="【绝密★启用前】")))
    assert level == Level.TOP_SECRET and ev[0].zone == "first_page_top"
    _, ev, level = verdict(rules, docs.odf("text", docs.odt_body(["正文"], note="机密★1年")))
    assert level == Level.SECRET and ev[0].zone == "body", "a footnote is body, not the top of the page"
    assert verdict(rules, docs.odf("text", docs.odt_body(["正文"], table=[["机密★1年", "x"]])))[2] == Level.SECRET
    register = docs.odt_body(["登记表"], table=[["名称", "密级"], ["报告", "机密"]])
    assert verdict(rules, docs.odf("text", register))[2] == Level.PUBLIC, "a bare level word in a table is a column value"


def test_odt_prose_about_levels_is_public(rules: RuleSet) -> None:
    body = docs.odt_body(["培训课件：如何区分绝密、机密和秘密文件", "本协议所称商业秘密，是指不为公众所知悉的信息。"])
    ex, ev, level = verdict(rules, docs.odf("text", body, title="商业秘密保护协议"))
    assert ex.inspectable and ev == [] and level == Level.PUBLIC


def test_odt_meta_user_defined_label_and_title(rules: RuleSet) -> None:
    ex, ev, level = verdict(rules, docs.odf("text", docs.odt_body(["正文"]), title="季度总结", user={"密级": "机密"}))
    assert level == Level.SECRET and [(e.rule, e.zone) for e in ev] == [("label.property", "metadata")]
    keys = {c.location.get("key") for c in ex.chunks if c.zone == "metadata"}
    assert {"title", "密级"} <= keys and "generator" not in keys


@pytest.mark.parametrize("flat", [False, True], ids=["ods", "fods"])
def test_ods_banner_row_and_register(rules: RuleSet, flat: bool) -> None:
    data = docs.odf("spreadsheet", docs.ods_body({"封面": [["机密"], ["2026年预算表"]], "明细": [["项目", "金额"]]}),
                    flat=flat)
    ex, ev, level = verdict(rules, data)
    assert ex.type.startswith("application/vnd.oasis.opendocument.spreadsheet") and ex.inspectable
    assert level == Level.SECRET and ev[0].location == {"sheet": "封面", "cell": "A1"}
    register = {"登记簿": [["序号", "文件名称", "密级"]] + [[str(i), f"文件{i}", "机密"] for i in range(1, 30)]}
    ex, ev, level = verdict(rules, docs.odf("spreadsheet", docs.ods_body(register), flat=flat))
    assert level == Level.PUBLIC
    assert len(ex.chunks) < 200, "repeated empty rows are not expanded"


@pytest.mark.parametrize("flat", [False, True], ids=["ods", "fods"])
def test_ods_header_regions_read_apart(rules: RuleSet, flat: bool) -> None:
    """Calc's left/centre/right header regions are separate texts, not one line."""
    data = docs.odf("spreadsheet", docs.ods_body({"S": [["x"]]}), flat=flat,
                    regions={"left": "XX集团有限公司", "right": "普通商密★2年"})
    _, ev, level = verdict(rules, data)
    assert level == Level.CONFIDENTIAL and [e.zone for e in ev] == ["header"]


def test_odp_first_slide_top_and_notes(rules: RuleSet) -> None:
    _, ev, level = verdict(rules, docs.odf("presentation", docs.odp_body([["绝密★启用前", "项目汇报"], ["第二页"]])))
    assert level == Level.TOP_SECRET and ev[0].location == {"slide": 1} and ev[0].zone == "first_page_top"
    _, ev, level = verdict(rules, docs.odf("presentation", docs.odp_body([["培训：绝密、机密、秘密的区别"], ["机密"]])))
    assert level == Level.PUBLIC, "a bare word on a later slide is not a marking"
    _, ev, _ = verdict(rules, docs.odf("presentation", docs.odp_body([["汇报"]], notes="秘密★1年")))
    assert [(e.zone, e.location) for e in ev] == [("body", {"slide": 1})]


def test_damaged_odt_is_corrupt() -> None:
    data = docs.odf("text", docs.odt_body(["机密★1年"] + [f"正文{i}" for i in range(2000)]))
    ex = extract_data(data[: len(data) // 2], LIMITS)
    assert not ex.inspectable and ex.reason == "corrupt"
    flat = docs.odf("text", docs.odt_body(["机密★1年"]), flat=True)
    ex = extract_data(flat.replace(b"</office:body>", b""), LIMITS)
    assert not ex.inspectable and ex.reason == "corrupt" and "XML error" in (ex.detail or "")


# -- documents written by LibreOffice itself -----------------------------------

@pytest.fixture(scope="module")
def source_fodt() -> bytes:
    """What LibreOffice opens and saves again in its own layout (manifest, settings, thumbnail)."""
    return docs.odf("text", docs.odt_body(["机密★1年", "关于做好年终工作的通知", "各部门："]), header="XX集团有限公司",
                    flat=True)


@pytest.mark.parametrize("to,mime", [("odt", "application/vnd.oasis.opendocument.text"),
                                     ("fodt", "application/vnd.oasis.opendocument.text-flat-xml")])
def test_libreoffice_written_odt(rules: RuleSet, source_fodt: bytes, to: str, mime: str) -> None:
    data = docs.soffice_convert(source_fodt, ".fodt", to)
    if data is None:
        pytest.skip("needs LibreOffice (soffice) on PATH to write real OpenDocument files")
    ex, ev, level = verdict(rules, data)
    assert ex.type == mime and ex.inspectable, ex.detail
    assert level == Level.SECRET and [e.zone for e in ev] == ["first_page_top"]
    assert any(c.zone == "header" and c.text == "XX集团有限公司" for c in ex.chunks)


def test_libreoffice_written_ods(rules: RuleSet) -> None:
    data = docs.soffice_convert("秘密★6个月\n预算表\n".encode(), ".csv", "ods")
    if data is None:
        pytest.skip("needs LibreOffice (soffice) on PATH to write real OpenDocument files")
    ex, ev, level = verdict(rules, data)
    assert ex.type == "application/vnd.oasis.opendocument.spreadsheet" and ex.inspectable, ex.detail
    assert level == Level.CONFIDENTIAL and ev[0].location["cell"] == "A1"


def test_password_protected_odt_is_encrypted() -> None:
    """LibreOffice encrypts content.xml and styles.xml and says so in the manifest."""
    import io
    import zipfile
    manifest = ('<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0">'
                '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml">'
                '<manifest:encryption-data manifest:checksum-type="SHA1/1K" manifest:checksum="x"/>'
                '</manifest:file-entry></manifest:manifest>')
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        z.writestr("META-INF/manifest.xml", manifest)
        z.writestr("content.xml", bytes(range(256)) * 8)
    ex = extract_data(out.getvalue(), LIMITS)
    assert (ex.inspectable, ex.reason) == (False, "encrypted")


def test_odt_embedded_chart_object_is_read_as_body(rules: RuleSet) -> None:
    """An object inserted into a document (a chart, a spreadsheet) lives in "Object 1/":
    a marking in its title was not read."""
    import io
    import zipfile
    base = docs.odf("text", docs.odt_body(["会议纪要", "正文"]))
    chart = ('<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
             'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
             'xmlns:chart="urn:oasis:names:tc:opendocument:xmlns:chart:1.0"><office:body><office:chart>'
             '<chart:chart><chart:title><text:p>{}</text:p></chart:title></chart:chart></office:chart>'
             '</office:body></office:document-content>')
    for title, want in (("机密★5年", Level.SECRET), ("销售统计", Level.PUBLIC)):
        out = io.BytesIO()
        with zipfile.ZipFile(io.BytesIO(base)) as src, zipfile.ZipFile(out, "w") as z:
            for info in src.infolist():
                z.writestr(info, src.read(info))
            z.writestr("Object 1/content.xml", chart.format(title))
        ex, ev, level = verdict(rules, out.getvalue())
        assert level == want and ex.inspectable, title
        if ev:
            assert (ev[0].zone, ev[0].location) == ("body", {"part": "Object 1/content.xml", "paragraph": 1})


MASTER_SLIDES = (f'<?xml version="1.0" encoding="UTF-8"?><office:document {docs.ODF_NS} '
                 'xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0" '
                 'office:mimetype="application/vnd.oasis.opendocument.presentation"><office:master-styles>'
                 '<style:master-page style:name="Default"><draw:frame presentation:class="title" '
                 'presentation:placeholder="true"><draw:text-box/></draw:frame>'
                 '<draw:frame draw:layer="backgroundobjects" svg:x="1cm" svg:y="0.5cm"><draw:text-box>'
                 '<text:p>MASTER</text:p></draw:text-box></draw:frame></style:master-page></office:master-styles>'
                 '<office:body><office:presentation><draw:page draw:name="page1" draw:master-page-name="Default">'
                 '<draw:frame><draw:text-box><text:p>关于工作的通知</text:p></draw:text-box></draw:frame>'
                 '</draw:page></office:presentation></office:body></office:document>')


def test_a_text_box_on_the_master_slide_is_a_header(rules: RuleSet) -> None:
    """A text box put on the master slide is printed on every slide: it was not read."""
    ex, ev, level = verdict(rules, MASTER_SLIDES.replace("MASTER", "机密★1年").encode())
    assert ex.inspectable and level == Level.SECRET
    assert [(e.zone, e.location.get("master")) for e in ev] == [("header", "Default")]
    ex, ev, level = verdict(rules, MASTER_SLIDES.replace("MASTER", "XX集团有限公司").encode())
    assert level == Level.PUBLIC and "XX集团有限公司" in [c.text for c in ex.chunks]
