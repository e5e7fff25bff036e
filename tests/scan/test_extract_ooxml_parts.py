"""The parts of an Office document that a reader sees besides its stories: an Excel
table or a Word document embedded in it, an imported chunk (w:altChunk), charts,
SmartArt, a sheet's text boxes and comments, slide comments. Each was skipped, so a
marking there left the document public and inspectable. The documents are the
generated ones of tests/support/docs.py with the part a real Office file carries
added under its real name (LibreOffice's own comments and text boxes are in
tests/scan/test_real_tools.py)."""
from __future__ import annotations

import io
import zipfile

import pytest

from baomi.agent.scan.rules import RuleSet
from baomi.common.levels import Level
from tests.support import docs

from .extracted import rules, verdict  # noqa: F401 (rules: a fixture)

MARK = "机密★5年"
A = "http://schemas.openxmlformats.org/drawingml/2006/main"
CHART = (f'<c:chartSpace xmlns:c="http://schemas.openxmlformats.org/drawingml/2006/chart" xmlns:a="{A}"><c:chart>'
         '<c:title><c:tx><c:rich><a:p><a:r><a:t>{title}</a:t></a:r></a:p></c:rich></c:tx></c:title><c:plotArea>'
         '<c:barChart><c:ser><c:tx><c:strRef><c:strCache><c:pt idx="0"><c:v>{series}</c:v></c:pt></c:strCache>'
         '</c:strRef></c:tx></c:ser></c:barChart></c:plotArea></c:chart></c:chartSpace>')
SMARTART = (f'<dgm:dataModel xmlns:dgm="http://schemas.openxmlformats.org/drawingml/2006/diagram" xmlns:a="{A}">'
            '<dgm:ptLst><dgm:pt><dgm:t><a:p><a:r><a:t>{text}</a:t></a:r></a:p></dgm:t></dgm:pt></dgm:ptLst>'
            '</dgm:dataModel>')
THREADED = ('<ThreadedComments xmlns="http://schemas.microsoft.com/office/spreadsheetml/2018/threadedcomments">'
            '<threadedComment ref="A1" id="{{1}}"><text>{text}</text></threadedComment></ThreadedComments>')
SLIDE_COMMENT = ('<p:cmLst xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main">'
                 '<p:cm authorId="0"><p:text>{text}</p:text></p:cm></p:cmLst>')
ALT_RELS = ('<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rIdA" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/aFChunk"'
            ' Target="afchunk.htm"/></Relationships>')




def with_parts(base: bytes, parts: dict[str, bytes]) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(base))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for info in src.infolist():
            if info.filename not in parts:
                z.writestr(info, src.read(info))
        for name, body in parts.items():
            z.writestr(name, body)
    return out.getvalue()


def level(rules: RuleSet, data: bytes):
    ex, ev, got = verdict(rules, data)
    return got, ev, ex


DOCX = docs.docx(["会议纪要", "正文"])
XLSX = docs.xlsx({"S": [["会议"], ["x"]]})
PPTX = docs.pptx([["会议"]])


def cases(text: str) -> dict[str, bytes]:
    return {
        "docx: an embedded Excel table": with_parts(DOCX, {"word/embeddings/Microsoft_Excel_Worksheet.xlsx":
                                                           docs.xlsx({"S": [[text], ["1"]]})}),
        "docx: an embedded Word 97 document": with_parts(DOCX, {"word/embeddings/oleObject1.bin": docs.doc([text])}),
        "docx: an imported HTML chunk": with_parts(DOCX, {
            "word/afchunk.htm": f"<html><body><p>{text}</p><p>正文</p></body></html>".encode(),
            "word/_rels/document.xml.rels": ALT_RELS.encode()}),
        "docx: a chart title": with_parts(DOCX, {"word/charts/chart1.xml":
                                                 CHART.format(title=text, series="销量").encode()}),
        "docx: SmartArt": with_parts(DOCX, {"word/diagrams/data1.xml": SMARTART.format(text=text).encode()}),
        "xlsx: a chart's series name": with_parts(XLSX, {"xl/charts/chart1.xml":
                                                         CHART.format(title="销量", series=text).encode()}),
        "xlsx: a threaded comment": with_parts(XLSX, {"xl/threadedComments/threadedComment1.xml":
                                                      THREADED.format(text=text).encode()}),
        "pptx: a chart title": with_parts(PPTX, {"ppt/charts/chart1.xml":
                                                 CHART.format(title=text, series="销量").encode()}),
        "pptx: a slide comment": with_parts(PPTX, {"ppt/comments/comment1.xml":
                                                   SLIDE_COMMENT.format(text=text).encode()}),
        "pptx: an embedded workbook": with_parts(PPTX, {"ppt/embeddings/Microsoft_Excel_Worksheet1.xlsx":
                                                        docs.xlsx({"S": [[text]]})}),
    }


@pytest.mark.parametrize("case", sorted(cases(MARK)))
def test_marking_in_a_part_a_reader_sees_is_found(rules: RuleSet, case: str) -> None:
    got, ev, ex = level(rules, cases(MARK)[case])
    assert got == Level.SECRET and ex.inspectable, (case, ex.reason, ex.detail)


@pytest.mark.parametrize("case", sorted(cases("销售统计")))
def test_the_same_parts_without_a_marking_stay_public(rules: RuleSet, case: str) -> None:
    got, ev, ex = level(rules, cases("销售统计")[case])
    assert got == Level.PUBLIC and ev == [] and ex.inspectable, (case, ex.reason, ex.detail)


def test_a_chart_part_is_body_and_names_itself(rules: RuleSet) -> None:
    got, ev, ex = level(rules, cases(MARK)["docx: a chart title"])
    assert [(e.zone, e.location) for e in ev] == [("body", {"part": "word/charts/chart1.xml", "paragraph": 1})]


def test_a_password_protected_embedded_object_makes_the_document_not_inspectable(rules: RuleSet) -> None:
    locked = docs.encrypted_zip({"a.txt": MARK.encode()})
    if locked is None:
        pytest.skip("needs the 7z tool (p7zip-full) to write an encrypted zip")
    got, ev, ex = level(rules, with_parts(DOCX, {"word/embeddings/package1.zip": locked}))
    assert not ex.inspectable and ex.reason == "encrypted" and "word/embeddings/package1.zip" in ex.detail


def package(name: str, data: bytes) -> bytes:
    """An OLE 1.0 package, as Office embeds a file with Insert > Object > from file: an
    OLE container whose \\x01Ole10Native stream holds the label, paths and the file."""
    import struct
    temp = f"C:\\Users\\zhang\\AppData\\Local\\Temp\\{name}\0".encode("gbk")
    native = (b"\x02\x00" + name.encode("gbk") + b"\0" + f"C:\\Users\\zhang\\{name}\0".encode("gbk") +
              b"\x00\x00\x03\x00" + struct.pack("<I", len(temp)) + temp + struct.pack("<I", len(data)) + data)
    return docs.ole({"\x01Ole10Native": struct.pack("<I", len(native)) + native})


@pytest.mark.parametrize("marked", [True, False])
def test_file_embedded_as_an_ole_package_is_read(rules: RuleSet, marked: bool) -> None:
    """A file embedded from disk was "an OLE container of an unknown application":
    not inspectable, and a marked document inside it went to a stick with an audit."""
    inner = docs.docx(["机密★5年" if marked else "会议纪要", "正文"])
    got, ev, ex = level(rules, with_parts(DOCX, {"word/embeddings/oleObject1.bin": package("方案.docx", inner)}))
    assert ex.inspectable, ex.detail
    assert got == (Level.SECRET if marked else Level.PUBLIC)
    if marked:
        assert ev[0].location["member"] == "word/embeddings/oleObject1.bin/方案.docx"
