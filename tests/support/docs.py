"""Real test documents in every format the scanner reads, written from scratch
(OOXML and OFD as zips of XML, PDF with a CID font and a ToUnicode map, RTF
with \\ansicpg936 and \\uN escapes, archives through the standard library,
py7zr and the 7z tool)."""
from __future__ import annotations

import gzip
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
CT = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'


def _zip(parts: dict[str, str | bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, body in parts.items():
            z.writestr(name, body.encode() if isinstance(body, str) else body)
    return out.getvalue()


def _runs(text: str, split: bool) -> str:
    """A paragraph's runs; split=True cuts the text into one run per character
    the way Word does after editing (formatting changes, spell check)."""
    pieces = list(text) if split else [text]
    return "".join(f'<w:r><w:rPr><w:b w:val="{i % 2}"/></w:rPr><w:t xml:space="preserve">{escape(p)}</w:t></w:r>'
                   for i, p in enumerate(pieces))


def _p(text: str, split: bool = False) -> str:
    return f"<w:p>{_runs(text, split)}</w:p>"


def docx(paragraphs: list[str], *, header: str | None = None, footer: str | None = None,
         textbox: str | None = None, table: list[list[str]] | None = None, split_runs: bool = False,
         custom: dict[str, str] | None = None, label_ids: list[str] | None = None,
         comment: str | None = None, title: str | None = None, media: bytes | None = None,
         raw_body: str = "") -> bytes:
    """media: the bytes of a picture stored as word/media/image1.jpeg, as a photo in a report is;
    raw_body: WordprocessingML put first in the body, as it is."""
    body = raw_body
    if textbox is not None:  # a text box anchored in the first paragraph, as templates put a marking
        body += (f'<w:p><w:r><w:drawing><wp:anchor xmlns:wp="http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing">'
                 f'<a:graphic xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main"><a:graphicData>'
                 f'<wps:wsp xmlns:wps="http://schemas.microsoft.com/office/word/2010/wordprocessingShape"><wps:txbx>'
                 f'<w:txbxContent>{_p(textbox, split_runs)}</w:txbxContent></wps:txbx></wps:wsp>'
                 f'</a:graphicData></a:graphic></wp:anchor></w:drawing></w:r></w:p>')
    if table:
        body += "<w:tbl>" + "".join("<w:tr>" + "".join(f"<w:tc>{_p(c)}</w:tc>" for c in row) + "</w:tr>"
                                    for row in table) + "</w:tbl>"
    body += "".join(_p(t, split_runs) for t in paragraphs)
    parts: dict[str, str | bytes] = {
        "[Content_Types].xml": CT + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                               '<Default Extension="xml" ContentType="application/xml"/></Types>',
        "word/document.xml": f"{CT}<w:document {W}><w:body>{body}</w:body></w:document>",
    }
    if header is not None:
        parts["word/header1.xml"] = f"{CT}<w:hdr {W}>{_p(header, split_runs)}</w:hdr>"
    if footer is not None:
        parts["word/footer1.xml"] = f"{CT}<w:ftr {W}>{_p(footer, split_runs)}</w:ftr>"
    if comment is not None:
        parts["word/comments.xml"] = f'{CT}<w:comments {W}><w:comment w:id="0">{_p(comment)}</w:comment></w:comments>'
    if title is not None:
        parts["docProps/core.xml"] = (f'{CT}<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/'
                                      f'metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/">'
                                      f"<dc:title>{escape(title)}</dc:title></cp:coreProperties>")
    if custom:
        props = "".join(f'<property fmtid="{{D5CDD505-2E9C-101B-9397-08002B2CF9AE}}" pid="{i + 2}" name="{escape(k)}">'
                        f"<vt:lpwstr>{escape(v)}</vt:lpwstr></property>" for i, (k, v) in enumerate(custom.items()))
        parts["docProps/custom.xml"] = (f'{CT}<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/'
                                        f'custom-properties" xmlns:vt="http://schemas.openxmlformats.org/officeDocument/'
                                        f'2006/docPropsVTypes">{props}</Properties>')
    if label_ids:
        labels = "".join(f'<clbl:label id="{{{i}}}" enabled="1" method="Standard" siteId="{{00000000-0000-0000-0000-000000000000}}"/>'
                         for i in label_ids)
        parts["docMetadata/LabelInfo.xml"] = (f'{CT}<clbl:labelList xmlns:clbl="http://schemas.microsoft.com/office/'
                                              f'2020/mipLabelMetadata">{labels}</clbl:labelList>')
    if media is not None:
        parts["word/media/image1.jpeg"] = media
    return _zip(parts)


def _col(i: int) -> str:
    s = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(65 + r) + s
    return s


def xlsx(sheets: dict[str, list[list[str]]], header: str | None = None) -> bytes:
    """Sheets of text cells; strings go through the shared string table."""
    shared: list[str] = []
    index: dict[str, int] = {}
    parts: dict[str, str | bytes] = {"[Content_Types].xml": CT + '<Types xmlns="http://schemas.openxmlformats.org/'
                                     'package/2006/content-types"/>'}
    rels, sheet_el = [], []
    ns = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" ' \
         'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
    for n, (name, rows) in enumerate(sheets.items(), 1):
        xml_rows = []
        for r, row in enumerate(rows, 1):
            cells = []
            for c, text in enumerate(row):
                if text == "":
                    continue
                if text not in index:
                    index[text] = len(shared)
                    shared.append(text)
                cells.append(f'<c r="{_col(c)}{r}" t="s"><v>{index[text]}</v></c>')
            xml_rows.append(f'<row r="{r}">{"".join(cells)}</row>')
        hf = f"<headerFooter><oddHeader>&amp;C{escape(header)}</oddHeader></headerFooter>" if header and n == 1 else ""
        parts[f"xl/worksheets/sheet{n}.xml"] = f"{CT}<worksheet {ns}><sheetData>{''.join(xml_rows)}</sheetData>{hf}</worksheet>"
        rels.append(f'<Relationship Id="rId{n}" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
                    f'relationships/worksheet" Target="worksheets/sheet{n}.xml"/>')
        sheet_el.append(f'<sheet name="{escape(name)}" sheetId="{n}" r:id="rId{n}"/>')
    parts["xl/workbook.xml"] = f"{CT}<workbook {ns}><sheets>{''.join(sheet_el)}</sheets></workbook>"
    parts["xl/_rels/workbook.xml.rels"] = (f'{CT}<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
                                           f'relationships">{"".join(rels)}</Relationships>')
    parts["xl/sharedStrings.xml"] = (f'{CT}<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                                     + "".join(f"<si><t>{escape(s)}</t></si>" for s in shared) + "</sst>")
    return _zip(parts)


def _brt(typ: int, body: bytes) -> bytes:
    """A BIFF12 record of an .xlsb part: type and size seven bits a byte."""
    def varint(n: int) -> bytes:
        out = bytearray()
        while True:
            out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
            n >>= 7
            if not n:
                return bytes(out)
    return varint(typ) + varint(len(body)) + body


def _wide(text: str | None) -> bytes:
    """An XLWideString; None: the null of a nullable one."""
    import struct
    if text is None:
        return struct.pack("<I", 0xFFFFFFFF)
    units = text.encode("utf-16-le")
    return struct.pack("<I", len(units) // 2) + units


def xlsb(sheets: dict[str, list[list[str]]], header: str | None = None, comment: str | None = None,
         inline: bool = False) -> bytes:
    """An Excel binary workbook, as Excel writes one for "Save as .xlsb" (no tool in
    Debian writes the format): BIFF12 records for the workbook's sheet list, the
    shared strings, each sheet's rows and cells ([MS-XLSB] 2.4), the first sheet's page
    header and a comment. `inline`: cells hold their strings (BrtCellSt) rather than
    pointing into the shared strings (BrtCellIsst)."""
    import struct
    shared: list[str] = []
    index: dict[str, int] = {}
    book, rels = b"", []
    parts: dict[str, str | bytes] = {"[Content_Types].xml": CT + '<Types xmlns="http://schemas.openxmlformats.org/'
                                     'package/2006/content-types"/>'}
    for n, (name, rows) in enumerate(sheets.items(), 1):
        body = b""
        for r, row in enumerate(rows):
            body += _brt(0, struct.pack("<IIHHB", r, 0, 300, 0, 0))   # row, style, height, flags
            for c, text in enumerate(row):
                if text == "":
                    continue
                cell = struct.pack("<II", c, 0)
                if inline:
                    body += _brt(6, cell + _wide(text))
                else:
                    if text not in index:
                        index[text] = len(shared)
                        shared.append(text)
                    body += _brt(7, cell + struct.pack("<I", index[text]))
        if header is not None and n == 1:
            body += _brt(479, b"\x00\x00" + _wide(f"&C{header}") + _wide(None) * 5)
        parts[f"xl/worksheets/sheet{n}.bin"] = body
        rels.append(f'<Relationship Id="rId{n}" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
                    f'relationships/worksheet" Target="worksheets/sheet{n}.bin"/>')
        book += _brt(156, struct.pack("<II", 0, n) + _wide(f"rId{n}") + _wide(name))
    parts["xl/workbook.bin"] = book
    parts["xl/_rels/workbook.bin.rels"] = (f'{CT}<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
                                           f'relationships">{"".join(rels)}</Relationships>')
    parts["xl/sharedStrings.bin"] = b"".join(_brt(19, b"\x00" + _wide(t)) for t in shared)
    if comment is not None:
        parts["xl/comments1.bin"] = _brt(637, b"\x00" + _wide(comment))
    return _zip(parts)


def pptx(slides: list[list[str]], media: bytes | None = None, master: list[str] | None = None) -> bytes:
    """master: texts of a slide master's text box (printed on every slide)."""
    ns = ('xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" '
          'xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main" '
          'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"')
    parts: dict[str, str | bytes] = {"[Content_Types].xml": CT + "<Types/>"}
    ids, rels = [], []
    for n, paras in enumerate(slides, 1):
        body = "".join(f"<a:p><a:r><a:t>{escape(t)}</a:t></a:r></a:p>" for t in paras)
        parts[f"ppt/slides/slide{n}.xml"] = (f"{CT}<p:sld {ns}><p:cSld><p:spTree><p:sp><p:txBody>{body}"
                                             f"</p:txBody></p:sp></p:spTree></p:cSld></p:sld>")
        ids.append(f'<p:sldId id="{255 + n}" r:id="rId{n}"/>')
        rels.append(f'<Relationship Id="rId{n}" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
                    f'relationships/slide" Target="slides/slide{n}.xml"/>')
    parts["ppt/presentation.xml"] = f"{CT}<p:presentation {ns}><p:sldIdLst>{''.join(ids)}</p:sldIdLst></p:presentation>"
    parts["ppt/_rels/presentation.xml.rels"] = (f'{CT}<Relationships xmlns="http://schemas.openxmlformats.org/package/'
                                                f'2006/relationships">{"".join(rels)}</Relationships>')
    if media is not None:
        parts["ppt/media/image1.jpeg"] = media
    if master is not None:
        body = "".join(f"<a:p><a:r><a:t>{escape(t)}</a:t></a:r></a:p>" for t in master)
        parts["ppt/slideMasters/slideMaster1.xml"] = (f"{CT}<p:sldMaster {ns}><p:cSld><p:spTree><p:sp><p:txBody>"
                                                      f"{body}</p:txBody></p:sp></p:spTree></p:cSld></p:sldMaster>")
    return _zip(parts)


def pdf(pages: list[list[str]], title: str | None = None, subject: str | None = None,
        xmp: dict[str, str] | None = None, image: bytes | None = None, drawn_last: str | None = None) -> bytes:
    """A PDF whose text layer is Unicode text in a CID font (Identity-H with a
    ToUnicode map), one line per entry, from the top of each page; optional Info
    entries, an XMP packet of simple properties ({"pdfx:Classification": "机密"})
    and a JPEG image (DCTDecode XObject) drawn on the first page. drawn_last: a
    line drawn at the very top of page 1 after everything else, as a template's
    marking text box is."""
    used = sorted({ord(ch) for page in pages + [[drawn_last or ""]] for line in page for ch in line} | {0x20})
    ranges = sorted({cp >> 8 for cp in used})
    cmap = ("/CIDInit /ProcSet findresource begin 12 dict begin begincmap /CMapName /Baomi def "
            "1 begincodespacerange <0000> <FFFF> endcodespacerange "
            f"{len(ranges)} beginbfrange "
            + " ".join(f"<{hi:02X}00> <{hi:02X}FF> <{hi:02X}00>" for hi in ranges)
            + " endbfrange endcmap CMapName currentdict /CMap defineresource pop end end").encode()
    objs: list[bytes] = [b"<< /Type /Catalog /Pages 2 0 R >>", b""]  # pages filled in below
    font = 3
    objs.append(b"<< /Type /Font /Subtype /Type0 /BaseFont /SimSun /Encoding /Identity-H "
                b"/DescendantFonts [4 0 R] /ToUnicode 5 0 R >>")
    objs.append(b"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /SimSun /CIDSystemInfo "
                b"<< /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> /FontDescriptor 6 0 R /DW 1000 >>")
    objs.append(b"<< /Length %d >>\nstream\n" % len(cmap) + cmap + b"\nendstream")
    objs.append(b"<< /Type /FontDescriptor /FontName /SimSun /Flags 4 /FontBBox [0 -200 1000 900] /ItalicAngle 0 "
                b"/Ascent 900 /Descent -200 /CapHeight 700 /StemV 80 >>")
    kids = []
    xobj = 0
    if image is not None:
        objs.append(b"<< /Type /XObject /Subtype /Image /Width 640 /Height 480 /ColorSpace /DeviceRGB "
                    b"/BitsPerComponent 8 /Filter /DCTDecode /Length %d >>\nstream\n" % len(image) + image + b"\nendstream")
        xobj = len(objs)
    for n, page in enumerate(pages):
        ops = "BT /F1 12 Tf 14 TL 50 800 Td " + " ".join(
            "<" + "".join(f"{ord(ch):04X}" for ch in line) + "> Tj T*" for line in page) + " ET"
        if drawn_last and n == 0:
            ops += " BT /F1 12 Tf 50 815 Td <" + "".join(f"{ord(ch):04X}" for ch in drawn_last) + "> Tj ET"
        draw = xobj and n == 0
        if draw:
            ops += " q 320 0 0 240 100 100 cm /Im1 Do Q"
        objs.append(b"<< /Length %d >>\nstream\n" % len(ops) + ops.encode() + b"\nendstream")
        content = len(objs)
        res = b"/Font << /F1 %d 0 R >>" % font + (b" /XObject << /Im1 %d 0 R >>" % xobj if draw else b"")
        objs.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents %d 0 R "
                    b"/Resources << %s >> >>" % (content, res))
        kids.append(len(objs))
    objs[1] = b"<< /Type /Pages /Kids [" + b" ".join(b"%d 0 R" % k for k in kids) + b"] /Count %d >>" % len(kids)
    info = None
    if title or subject:
        def s(v: str) -> bytes:
            return b"<FEFF" + v.encode("utf-16-be").hex().upper().encode() + b">"
        objs.append(b"<< " + (b"/Title " + s(title) + b" " if title else b"") +
                    (b"/Subject " + s(subject) if subject else b"") + b" >>")
        info = len(objs)
    if xmp:
        props = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in xmp.items())
        packet = ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
                  '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" '
                  'xmlns:pdfx="http://ns.adobe.com/pdfx/1.3/" xmlns:pdf="http://ns.adobe.com/pdf/1.3/">'
                  f'{props}</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>').encode()
        objs.append(b"<< /Type /Metadata /Subtype /XML /Length %d >>\nstream\n" % len(packet) + packet + b"\nendstream")
        objs[0] = b"<< /Type /Catalog /Pages 2 0 R /Metadata %d 0 R >>" % len(objs)
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, o in enumerate(objs, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % i + o + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1))
    for off in offsets:
        out.write(b"%010d 00000 n \n" % off)
    trailer = b"<< /Size %d /Root 1 0 R" % (len(objs) + 1) + (b" /Info %d 0 R" % info if info else b"") + b" >>"
    out.write(b"trailer\n" + trailer + b"\nstartxref\n%d\n%%%%EOF\n" % xref)
    return out.getvalue()


def ofd(pages: list[list[str]], custom: dict[str, str] | None = None, title: str | None = None,
        attachments: dict[str, bytes] | None = None) -> bytes:
    """GB/T 33190: OFD.xml → Doc_0/Document.xml → Pages/Page_N/Content.xml; attachments
    (name → file) listed in Doc_0/Attachs/Attachments.xml, as ofdrw writes them."""
    ns = 'xmlns:ofd="http://www.ofdspec.org/2016"'
    customs = "".join(f'<ofd:CustomData Name="{escape(k)}">{escape(v)}</ofd:CustomData>' for k, v in (custom or {}).items())
    info = (f"<ofd:DocInfo><ofd:DocID>a1b2</ofd:DocID>" + (f"<ofd:Title>{escape(title)}</ofd:Title>" if title else "")
            + (f"<ofd:CustomDatas>{customs}</ofd:CustomDatas>" if customs else "") + "</ofd:DocInfo>")
    parts: dict[str, str | bytes] = {
        "OFD.xml": f'{CT}<ofd:OFD {ns} Version="1.0" DocType="OFD"><ofd:DocBody>{info}'
                   f"<ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot></ofd:DocBody></ofd:OFD>"}
    page_refs = "".join(f'<ofd:Page ID="{i + 10}" BaseLoc="Pages/Page_{i}/Content.xml"/>' for i in range(len(pages)))
    attached = ""
    if attachments:
        listing = "".join(f'<ofd:Attachment ID="{n}" Name="{escape(name)}"><ofd:FileLoc>file{n}.bin</ofd:FileLoc>'
                          f'</ofd:Attachment>' for n, name in enumerate(attachments, 1))
        parts["Doc_0/Attachs/Attachments.xml"] = f"{CT}<ofd:Attachments {ns}>{listing}</ofd:Attachments>"
        for n, body in enumerate(attachments.values(), 1):
            parts[f"Doc_0/Attachs/file{n}.bin"] = body
        attached = "<ofd:Attachments>Attachs/Attachments.xml</ofd:Attachments>"
    parts["Doc_0/Document.xml"] = (f"{CT}<ofd:Document {ns}><ofd:CommonData><ofd:MaxUnitID>100</ofd:MaxUnitID>"
                                   f"</ofd:CommonData><ofd:Pages>{page_refs}</ofd:Pages>{attached}</ofd:Document>")
    for i, lines in enumerate(pages):
        objs = []
        for n, line in enumerate(lines):
            y = 20 + n * 8
            # each line in two TextObjects, second half first: order must come from positions
            half = max(1, len(line) // 2)
            for x, piece in ((60 + half * 4, line[half:]), (20, line[:half])):
                if piece:
                    objs.append(f'<ofd:TextObject ID="{n}" Boundary="{x} {y} 150 8" Font="1" Size="4">'
                                f'<ofd:TextCode X="0" Y="6">{escape(piece)}</ofd:TextCode></ofd:TextObject>')
        parts[f"Doc_0/Pages/Page_{i}/Content.xml"] = (f"{CT}<ofd:Page {ns}><ofd:Content><ofd:Layer ID=\"1\">"
                                                      f"{''.join(objs)}</ofd:Layer></ofd:Content></ofd:Page>")
    return _zip(parts)


def xps(pages: list[list[str]], title: str | None = None) -> bytes:
    """An XPS document as Windows' XPS Document Writer writes one (no tool in Debian
    writes XPS text: Ghostscript's xpswrite draws it as outlines): the sequence, the
    document and its pages in UTF-16, each page under a scaling Canvas, each line a
    Glyphs run (a line's second half written first: the order must come from the
    positions), an obfuscated font beside them."""
    ns = 'xmlns="http://schemas.microsoft.com/xps/2005/06"'

    def utf16(xml: str) -> bytes:
        return xml.encode("utf-16")   # with its byte-order mark, as Windows writes them

    parts: dict[str, str | bytes] = {
        "[Content_Types].xml": CT + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>',
        "_rels/.rels": (f'{CT}<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                        '<Relationship Id="R1" Type="http://schemas.microsoft.com/xps/2005/06/fixedrepresentation" '
                        'Target="/FixedDocSeq.fdseq"/></Relationships>'),
        "FixedDocSeq.fdseq": utf16(f'<FixedDocumentSequence {ns}><DocumentReference Source="/Documents/1/FixedDoc.fdoc"/>'
                                   "</FixedDocumentSequence>"),
        "Documents/1/FixedDoc.fdoc": utf16(f"<FixedDocument {ns}>" + "".join(
            f'<PageContent Source="Pages/{n}.fpage"/>' for n in range(1, len(pages) + 1)) + "</FixedDocument>"),
        "Resources/0A1B2C3D-0000-0000-0000-000000000001.odttf": bytes(range(256)) * 16,
    }
    if title:
        parts["docProps/core.xml"] = (f'{CT}<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/'
                                      f'metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/">'
                                      f"<dc:title>{escape(title)}</dc:title></cp:coreProperties>")
    font = "/Resources/0A1B2C3D-0000-0000-0000-000000000001.odttf"
    for n, lines in enumerate(pages, 1):
        glyphs = []
        for i, line in enumerate(lines):
            y = 60 + 18 * i
            half = max(1, len(line) // 2)
            # a full em (12) a Chinese character, about half for the rest, as fonts advance
            first = sum(12 if ord(ch) >= 0x2E80 else 6 for ch in line[:half])
            for x, piece in ((40 + first, line[half:]), (40, line[:half])):
                if piece:
                    text = "{}" + piece if piece.startswith("{") else piece
                    glyphs.append(f'<Glyphs FontUri="{font}" FontRenderingEmSize="12" OriginX="{x}" OriginY="{y}" '
                                  f'UnicodeString="{escape(text, {chr(34): "&quot;"})}" Fill="#FF000000"/>')
        parts[f"Documents/1/Pages/{n}.fpage"] = utf16(
            f'<FixedPage {ns} Width="816" Height="1056" xml:lang="zh-CN"><Canvas><Canvas.RenderTransform>'
            f'<MatrixTransform Matrix="1.3333,0,0,1.3333,0,0"/></Canvas.RenderTransform>'
            f'<Path Data="M 0,0 L 600,0 L 600,800 Z" Fill="#FFFFFFFF"/>{"".join(glyphs)}</Canvas></FixedPage>')
    return _zip(parts)


def _rtf_text(line: str, salt: int = 0) -> str:
    """One line as Chinese Word writes it: GBK bytes as \\'xx, some characters as \\uN."""
    enc = []
    for j, ch in enumerate(line):
        if ord(ch) < 128:
            enc.append(ch.replace("\\", "\\\\").replace("{", "\\{").replace("}", "\\}").replace("\t", "\\tab "))
        elif (salt + j) % 3 == 0 or ch == "★":
            enc.append(f"\\u{ord(ch) if ord(ch) < 32768 else ord(ch) - 65536}?")
        else:
            enc.append("".join(f"\\'{b:02x}" for b in ch.encode("gbk")))
    return "".join(enc)


def rtf(lines: list[str], *, header: str | None = None, footer: str | None = None, shape: str | None = None,
        symbol_star: bool = False) -> bytes:
    """RTF as Chinese Word writes it: \\ansicpg936, GBK bytes as \\'xx, and some
    characters as \\uN escapes; a page header/footer group, a shape with text
    (\\shptxt), and a ★ inserted as a Wingdings SYMBOL field if asked."""
    out = []
    if header is not None:
        out.append("{\\header\\pard\\plain " + _rtf_text(header) + "\\par}\n")
    if footer is not None:
        out.append("{\\footer\\pard\\plain " + _rtf_text(footer) + "\\par}\n")
    if shape is not None:
        out.append("{\\shp{\\*\\shpinst\\shpleft100\\shptop100{\\sp{\\sn fillColor}{\\sv 16777215}}"
                   "{\\shptxt\\pard " + _rtf_text(shape) + "\\par}}}\n")
    for i, line in enumerate(lines):
        text = _rtf_text(line, i)
        if symbol_star:
            text = text.replace("\\u9733?", '{\\field{\\*\\fldinst SYMBOL 171 \\\\f "Wingdings" \\\\s 16}'
                                             "{\\fldrslt\\f1\\'ab}}")
        out.append(text + "\\par\n")
    return ("{\\rtf1\\ansi\\ansicpg936\\deff0{\\fonttbl{\\f0\\fnil\\fcharset134 SimSun;}}\\uc1\n"
            + "".join(out) + "}").encode("ascii")


def zip_of(members: dict[str, bytes], gbk_names: bool = False) -> bytes:
    """A zip; gbk_names=True writes names the way Chinese Windows does (GBK bytes,
    no UTF-8 flag): each name is written as an ASCII stand-in of the same byte
    length, then the stand-in's bytes are replaced by the GBK bytes."""
    out = io.BytesIO()
    swaps: list[tuple[bytes, bytes]] = []
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for n, (name, body) in enumerate(members.items()):
            if gbk_names and not name.isascii():
                raw = name.encode("gbk")
                stand_in = f"~{n:04d}~".ljust(len(raw), "_")[: len(raw)]
                swaps.append((stand_in.encode(), raw))
                name = stand_in
            z.writestr(name, body)
    data = out.getvalue()
    for stand_in, raw in swaps:
        data = data.replace(stand_in, raw)
    return data


def tar_gz(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as t:
        for name, body in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            t.addfile(info, io.BytesIO(body))
    return out.getvalue()


def gz(body: bytes) -> bytes:
    return gzip.compress(body)


def sevenzip(members: dict[str, bytes], password: str | None = None) -> bytes:
    import py7zr
    out = io.BytesIO()
    with py7zr.SevenZipFile(out, "w", password=password, header_encryption=bool(password)) as z:
        for name, body in members.items():
            z.writestr(body, name)
    return out.getvalue()


def zip_by_7z(members: dict[str, bytes], *options: str) -> bytes | None:
    """A zip made by the 7z tool with these options; None when 7z is missing."""
    if not shutil.which("7z"):
        return None
    with tempfile.TemporaryDirectory() as d:
        for name, body in members.items():
            Path(d, name).write_bytes(body)
        subprocess.run(["7z", "a", "-tzip", *options, "out.zip", *members], cwd=d, check=True,
                       stdout=subprocess.DEVNULL)
        return Path(d, "out.zip").read_bytes()


def encrypted_zip(members: dict[str, bytes], password: str = "s3cret") -> bytes | None:
    """A ZipCrypto-encrypted zip made by the 7z tool; None when 7z is missing."""
    return zip_by_7z(members, f"-p{password}")


def rar4(members: dict[str, bytes], encrypted: bool = False) -> bytes:
    """A RAR 4 archive with stored members, as WinRAR writes with -m0 (no tool in
    Debian main writes RAR): marker, archive header, one file header and its data per
    member, end block. Names are UTF-8 under the Unicode flag when not ASCII. With
    `encrypted`, each member is flagged as password-protected."""
    import struct
    import zlib

    def block(kind: int, flags: int, body: bytes) -> bytes:
        head = struct.pack("<BHH", kind, flags, 7 + len(body)) + body
        return struct.pack("<H", zlib.crc32(head) & 0xFFFF) + head

    out = b"Rar!\x1a\x07\x00" + block(0x73, 0, bytes(6))
    for name, data in members.items():
        raw = name.encode()
        flags = 0x8000 | (0x200 if not name.isascii() else 0) | (0x04 if encrypted else 0)
        dos_time = (46 << 25) | (1 << 21) | (1 << 16)   # 2026-01-01 00:00
        body = struct.pack("<IIBIIBBHI", len(data), len(data), 2, zlib.crc32(data), dos_time, 20, 0x30,
                           len(raw), 0x20) + raw
        out += block(0x74, flags, body) + data
    return out + block(0x7B, 0x4000, b"")


def zip_bomb(levels: int = 3, width: int = 10, size: int = 50 * 1024 * 1024) -> bytes:
    """Nested zips of zeros: width**levels * size bytes once fully unpacked."""
    layer = _zip({"zeros.bin": bytes(size)})
    for n in range(levels - 1):
        layer = _zip({f"layer{n}-{i}.zip": layer for i in range(width)})
    return layer


# ---- legacy Office: a compound file (OLE2) writer and the streams inside -----

_END, _FREE, _FATSECT = 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD


def ole(streams: dict[str, bytes]) -> bytes:
    """A version-3 compound file holding `streams` at its root. Streams are padded
    with zeros to 4096 bytes so all live in the regular FAT (no mini stream needed)."""
    import struct
    names = sorted(streams, key=lambda n: (len(n), n.upper()))  # the order CFB compares names in
    datas = [streams[n] + b"\0" * max(0, 4096 - len(streams[n])) for n in names]
    sectors: list[bytes] = []
    fat: list[int] = []
    starts = []
    for d in datas:
        d += b"\0" * (-len(d) % 512)
        first = len(sectors)
        starts.append(first)
        for i in range(len(d) // 512):
            sectors.append(d[i * 512:(i + 1) * 512])
            fat.append(first + i + 1)
        fat[-1] = _END

    def entry(name: str, typ: int, start: int, size: int, child: int = _FREE, right: int = _FREE) -> bytes:
        raw = name.encode("utf-16-le") + b"\0\0"
        return (raw.ljust(64, b"\0") + struct.pack("<HBBIII", len(raw), typ, 1, _FREE, right, child)
                + b"\0" * 36 + struct.pack("<IQ", start, size))

    entries = [entry("Root Entry", 5, _END, 0, child=1 if names else _FREE)]
    for i, (n, s, d) in enumerate(zip(names, starts, datas)):
        entries.append(entry(n, 2, s, len(d), right=i + 2 if i + 1 < len(names) else _FREE))
    dirdata = b"".join(entries)
    dirdata += b"\0" * (-len(dirdata) % 512)
    dir_start = len(sectors)
    for i in range(len(dirdata) // 512):
        sectors.append(dirdata[i * 512:(i + 1) * 512])
        fat.append(dir_start + i + 1)
    fat[-1] = _END
    nfat = 1
    while (len(fat) + nfat) > nfat * 128:
        nfat += 1
    fat_start = len(sectors)
    fat += [_FATSECT] * nfat
    fat += [_FREE] * (nfat * 128 - len(fat))
    fatdata = struct.pack(f"<{len(fat)}I", *fat)
    sectors += [fatdata[i * 512:(i + 1) * 512] for i in range(nfat)]
    difat = [fat_start + i for i in range(nfat)] + [_FREE] * (109 - nfat)
    header = (bytes.fromhex("D0CF11E0A1B11AE1") + b"\0" * 16
              + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6) + b"\0" * 6
              + struct.pack("<IIIIIIIII", 0, nfat, dir_start, 0, 4096, _END, 0, _END, 0)
              + struct.pack("<109I", *difat))
    return header + b"".join(sectors)


def summary_info(props: dict[int, str], codepage: int = 936) -> bytes:
    """A SummaryInformation property set stream: {2: title, 3: subject, 4: author,
    5: keywords, 6: comments} as VT_LPSTR in `codepage`, plus the CodePage property."""
    import struct
    enc = {936: "gbk", 65001: "utf-8"}[codepage]
    values = [(1, struct.pack("<IhH", 2, codepage, 0))]
    for pid, text in props.items():
        raw = text.encode(enc) + b"\0"
        raw += b"\0" * (-len(raw) % 4)
        values.append((pid, struct.pack("<II", 0x1E, len(raw)) + raw))
    head = 8 + 8 * len(values)
    table, body = b"", b""
    for pid, v in values:
        table += struct.pack("<II", pid, head + len(body))
        body += v
    section = struct.pack("<II", head + len(body), len(values)) + table + body
    fmtid = bytes.fromhex("E0859FF2F94F6810AB9108002B27B3D9")
    return struct.pack("<HHI", 0xFFFE, 0, 0x00020006) + b"\0" * 16 + struct.pack("<I", 1) + fmtid + struct.pack("<I", 48) + section


def doc(paragraphs: list[str], header: str | None = None, wps: bool = False,
        summary: dict[int, str] | None = None) -> bytes:
    """A Word 97 document: FIB, Unicode text in one piece, the piece table in 1Table.
    With wps=True the file carries the stream WPS Office adds."""
    import struct
    main = "\r".join(paragraphs) + "\r"
    hdd = (header + "\r\r") if header else ""
    text = main + hdd
    fib = bytearray(0x800)
    struct.pack_into("<H", fib, 0, 0xA5EC)
    struct.pack_into("<H", fib, 0x0A, 0x0200)  # fWhichTblStm: the table is 1Table
    struct.pack_into("<iii", fib, 0x4C, len(main), 0, len(hdd))
    plc = struct.pack("<II", 0, len(text)) + struct.pack("<HIH", 0, 0x800, 0)
    clx = b"\x02" + struct.pack("<I", len(plc)) + plc
    struct.pack_into("<II", fib, 0x1A2, 0, len(clx))
    streams = {"WordDocument": bytes(fib) + text.encode("utf-16-le"), "1Table": clx}
    if wps:
        streams["WpsCustomData"] = b"\0" * 16
    if summary:
        streams["\x05SummaryInformation"] = summary_info(summary)
    return ole(streams)


def _rec(typ: int, body: bytes) -> bytes:
    import struct
    return struct.pack("<HH", typ, len(body)) + body


def xls(sheets: dict[str, list[list[str]]], wps: bool = False, header: str | None = None) -> bytes:
    """A BIFF8 workbook: globals with BOUNDSHEETs and the shared string table,
    then one substream of LABELSST cells per sheet; header: a HEADER record in
    each sheet, as Excel writes it (`&L&10机密★1年&C…`)."""
    import struct
    sst: list[str] = []
    for rows in sheets.values():
        for row in rows:
            sst += [v for v in row if v and v not in sst]
    bof = lambda dt: _rec(0x0809, struct.pack("<HHHHII", 0x0600, dt, 0, 0, 0, 0))  # noqa: E731
    strings = b"".join(struct.pack("<HB", len(s), 1) + s.encode("utf-16-le") for s in sst)
    sst_rec = _rec(0x00FC, struct.pack("<II", len(sst), len(sst)) + strings)
    subs = []
    for rows in sheets.values():
        cells = b"".join(_rec(0x00FD, struct.pack("<HHHI", r, c, 0, sst.index(v)))
                         for r, row in enumerate(rows) for c, v in enumerate(row) if v)
        hdr = _rec(0x0014, struct.pack("<HB", len(header), 1) + header.encode("utf-16-le")) if header else b""
        subs.append(bof(0x10) + hdr + cells + _rec(0x000A, b""))
    bound_len = sum(len(_rec(0x85, b"\0" * (8 + 2 * len(n)))) for n in sheets)
    pos = len(bof(5)) + bound_len + len(sst_rec) + 4
    bounds = b""
    for name, sub in zip(sheets, subs):
        bounds += _rec(0x0085, struct.pack("<IHBB", pos, 0, len(name), 1) + name.encode("utf-16-le"))
        pos += len(sub)
    wb = bof(5) + bounds + sst_rec + _rec(0x000A, b"") + b"".join(subs)
    return ole({"Workbook": wb, **({"WpsCustomData": b"\0" * 16} if wps else {})})


def ppt(slides: list[list[str]], wps: bool = False, footer: str | None = None, comment: str | None = None) -> bytes:
    """A PowerPoint 97 stream: a document container with a SlideListWithText in
    which each slide is a SlidePersistAtom followed by its TextCharsAtoms. footer: a
    HeadersFootersContainer's footer CString (the Header and Footer dialog's text);
    comment: a Comment10Container (author, text) on the first slide."""
    import struct

    def rec(ver_inst: int, typ: int, body: bytes) -> bytes:
        return struct.pack("<HHI", ver_inst, typ, len(body)) + body
    atoms = b""
    for texts in slides:
        atoms += struct.pack("<HHI", 0, 0x03F3, 20) + b"\0" * 20
        atoms += b"".join(struct.pack("<HHI", 0, 0x0FA0, len(t.encode("utf-16-le"))) + t.encode("utf-16-le")
                          for t in texts)
    slist = struct.pack("<HHI", 0x000F, 0x0FF0, len(atoms)) + atoms
    extra = b""
    if footer:
        extra += rec(0x003F, 0x0FD9, rec(0, 0x0FDA, b"\0" * 4) + rec(0x20, 0x0FBA, footer.encode("utf-16-le")))
    if comment:
        extra += rec(0x000F, 0x03EE, rec(0x000F, 0x2EE0, rec(0x00, 0x0FBA, "张三".encode("utf-16-le"))
                                          + rec(0x10, 0x0FBA, comment.encode("utf-16-le"))))
    stream = struct.pack("<HHI", 0x000F, 0x03E8, len(slist)) + slist + extra
    return ole({"PowerPoint Document": stream, "Current User": b"\0" * 16,
                **({"WpsCustomData": b"\0" * 16} if wps else {})})


ODF_NS = ('xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
          'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
          'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
          'xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" '
          'xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" '
          'xmlns:presentation="urn:oasis:names:tc:opendocument:xmlns:presentation:1.0" '
          'xmlns:meta="urn:oasis:names:tc:opendocument:xmlns:meta:1.0" '
          'xmlns:dc="http://purl.org/dc/elements/1.1/" office:version="1.3"')
ODF_MIME = {"text": "application/vnd.oasis.opendocument.text",
            "spreadsheet": "application/vnd.oasis.opendocument.spreadsheet",
            "presentation": "application/vnd.oasis.opendocument.presentation"}


def _tp(text: str) -> str:
    """A text:p as LibreOffice writes it: spaces runs as text:s, tabs as text:tab."""
    out = escape(text).replace("\t", "<text:tab/>").replace("  ", ' <text:s text:c="1"/>')
    return f"<text:p>{out}</text:p>"


def _odf_parts(kind: str, body: str, *, header: str | None, footer: str | None, title: str | None,
               user: dict[str, str] | None, regions: dict[str, str] | None) -> tuple[str, str, str]:
    """(meta, master styles, body) of an OpenDocument, shared by the package and the flat file."""
    meta = "".join([f"<dc:title>{escape(title)}</dc:title>" if title else "",
                    "<meta:generator>LibreOffice/7.4</meta:generator>"]
                   + [f'<meta:user-defined meta:name="{escape(k)}">{escape(v)}</meta:user-defined>'
                      for k, v in (user or {}).items()])
    page = "".join([f"<style:header>{_tp(header)}</style:header>" if header else "",
                    f"<style:footer>{_tp(footer)}</style:footer>" if footer else ""])
    if regions:  # Calc's header: left, center and right regions
        page += "<style:header>" + "".join(f"<style:region-{k}>{_tp(v)}</style:region-{k}>"
                                           for k, v in regions.items()) + "</style:header>"
    masters = f'<style:master-page style:name="Standard">{page}</style:master-page>'
    return (f"<office:meta>{meta}</office:meta>", f"<office:master-styles>{masters}</office:master-styles>",
            f"<office:body><office:{kind}>{body}</office:{kind}></office:body>")


def odt_body(paragraphs: list[str], *, table: list[list[str]] | None = None, frame: str | None = None,
             note: str | None = None) -> str:
    """frame: a text box anchored in the first paragraph; note: a footnote in the last."""
    out = ""
    if frame is not None:
        out += (f'<text:p><draw:frame draw:name="Frame1"><draw:text-box>{_tp(frame)}</draw:text-box>'
                f'</draw:frame></text:p>')
    if table:
        out += "<table:table>" + "".join("<table:table-row>" + "".join(
            f"<table:table-cell>{_tp(c)}</table:table-cell>" for c in row) + "</table:table-row>"
            for row in table) + "</table:table>"
    for i, t in enumerate(paragraphs):
        n = (f'<text:note text:note-class="footnote"><text:note-citation>1</text:note-citation>'
             f'<text:note-body>{_tp(note)}</text:note-body></text:note>') if note and i == len(paragraphs) - 1 else ""
        out += f"<text:p>{escape(t)}{n}</text:p>"
    return out


def ods_body(sheets: dict[str, list[list[str]]]) -> str:
    return "".join(f'<table:table table:name="{escape(name)}">' + "".join(
        "<table:table-row>" + "".join(f'<table:table-cell office:value-type="string">{_tp(c)}</table:table-cell>'
                                      if c else "<table:table-cell/>" for c in row) + "</table:table-row>"
        for row in rows) + '<table:table-row table:number-rows-repeated="1048000"><table:table-cell '
        'table:number-columns-repeated="1024"/></table:table-row></table:table>' for name, rows in sheets.items())


def odp_body(slides: list[list[str]], notes: str | None = None) -> str:
    out = ""
    for i, texts in enumerate(slides):
        frames = "".join(f'<draw:frame><draw:text-box>{_tp(t)}</draw:text-box></draw:frame>' for t in texts)
        n = (f"<presentation:notes><draw:frame><draw:text-box>{_tp(notes)}</draw:text-box></draw:frame>"
             f"</presentation:notes>") if notes and i == 0 else ""
        out += f'<draw:page draw:name="page{i + 1}">{frames}{n}</draw:page>'
    return out


def odf(kind: str, body: str, *, header: str | None = None, footer: str | None = None, title: str | None = None,
        user: dict[str, str] | None = None, flat: bool = False, thumbnail: bytes | None = None,
        regions: dict[str, str] | None = None) -> bytes:
    """An OpenDocument of kind text/spreadsheet/presentation, as a package (with
    the stored "mimetype" first, META-INF/manifest.xml, and the thumbnail
    LibreOffice writes) or as one flat XML file."""
    meta, masters, office_body = _odf_parts(kind, body, header=header, footer=footer, title=title, user=user,
                                          regions=regions)
    if flat:
        return (f'{CT}<office:document {ODF_NS} office:mimetype="{ODF_MIME[kind]}">'
                f"{meta}{masters}{office_body}</office:document>").encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(zipfile.ZipInfo("mimetype"), ODF_MIME[kind])  # stored, first, as the standard wants
        z.writestr("META-INF/manifest.xml", '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:'
                                            'xmlns:manifest:1.0"/>')
        z.writestr("meta.xml", f"{CT}<office:document-meta {ODF_NS}>{meta}</office:document-meta>")
        z.writestr("styles.xml", f"{CT}<office:document-styles {ODF_NS}>{masters}</office:document-styles>")
        z.writestr("content.xml", f"{CT}<office:document-content {ODF_NS}>{office_body}</office:document-content>")
        z.writestr("Thumbnails/thumbnail.png", thumbnail or b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    return out.getvalue()


def soffice_convert(data: bytes, suffix: str, to: str) -> bytes | None:
    """The document converted by LibreOffice (`soffice --headless --convert-to`), or
    None when LibreOffice is not installed. A private profile keeps runs apart."""
    exe = shutil.which("soffice") or shutil.which("libreoffice")
    if exe is None:
        return None
    with tempfile.TemporaryDirectory(prefix="baomi-lo-") as tmp:
        src = Path(tmp) / f"doc{suffix}"
        src.write_bytes(data)
        run = subprocess.run([exe, f"-env:UserInstallation=file://{tmp}/profile", "--headless",
                              *(["--infilter=CSV:44,34,76"] if suffix == ".csv" else []),  # UTF-8 CSV
                              "--convert-to", to, "--outdir", f"{tmp}/out", str(src)],
                             capture_output=True, text=True, timeout=180)
        outs = list((Path(tmp) / "out").glob("*"))
        if not outs:
            raise RuntimeError(f"LibreOffice wrote nothing: {run.stdout} {run.stderr}")
        return outs[0].read_bytes()


_CHINESE_LOCALE: dict[str, str] = {}


def chinese_locale() -> dict[str, str] | None:
    """Environment for a program run as on a Chinese desktop (zh_CN.UTF-8), the locale
    compiled once into a private folder with localedef; None where it cannot be."""
    if not _CHINESE_LOCALE:
        if shutil.which("localedef") is None:
            return None
        where = Path(tempfile.mkdtemp(prefix="baomi-locale-"))
        made = subprocess.run(["localedef", "-i", "zh_CN", "-f", "UTF-8", str(where / "zh_CN.UTF-8")],
                              capture_output=True, timeout=120)
        if made.returncode not in (0, 1) or not (where / "zh_CN.UTF-8").exists():   # 1: warnings only
            return None
        _CHINESE_LOCALE.update(LOCPATH=str(where), LC_ALL="zh_CN.UTF-8", LANG="zh_CN.UTF-8")
    return dict(_CHINESE_LOCALE)


def gnumeric_convert(data: bytes, suffix: str, exporter: str) -> bytes | None:
    """The spreadsheet converted by Gnumeric's ssconvert (exporter: `excel_biff7` for Excel
    5.0/95, `excel_biff8` for 97-2003), run in a Chinese locale so that Excel 95 strings
    are written in GBK (code page 936) as on a Chinese PC; None when Gnumeric or the
    locale is missing. A CSV cell that starts with = is a formula."""
    locale = chinese_locale()
    if shutil.which("ssconvert") is None or locale is None:
        return None
    with tempfile.TemporaryDirectory(prefix="baomi-gnumeric-") as tmp:
        src, out = Path(tmp) / f"in{suffix}", Path(tmp) / "out.xls"
        src.write_bytes(data)
        run = subprocess.run(["ssconvert", "-T", f"Gnumeric_Excel:{exporter}", str(src), str(out)],
                             capture_output=True, text=True, timeout=180,
                             env={**os.environ, **locale, "HOME": tmp})
        if not out.exists():
            raise RuntimeError(f"ssconvert wrote nothing: {run.stdout} {run.stderr}")
        return out.read_bytes()


def biff_sheet(rows: list[list[str]], version: int = 4, codepage: int = 936, header: str | None = None) -> bytes:
    """An Excel 2, 3 or 4 worksheet as those versions saved it: the BIFF record stream
    itself as the file (no OLE container), strings in the code page's bytes."""
    import codecs as _codecs
    import struct
    enc = _codecs.lookup(f"cp{codepage}").name
    bof = {2: 0x0009, 3: 0x0209, 4: 0x0409}[version]
    out = _rec(bof, struct.pack("<HH", 0, 0x0010) + (b"\0\0" if version > 2 else b""))
    out += _rec(0x0042, struct.pack("<H", codepage))
    if header:
        raw = header.encode(enc)
        out += _rec(0x0014, bytes([len(raw)]) + raw)
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            raw = text.encode(enc)
            if version == 2:
                out += _rec(0x0004, struct.pack("<HH", r, c) + b"\0\0\0" + bytes([len(raw)]) + raw)
            else:
                out += _rec(0x0204, struct.pack("<HHHH", r, c, 0, len(raw)) + raw)
    return out + _rec(0x000A, b"")


def _mime_text(body: str, subtype: str, charset: str, cte: str):
    """A text part in charset with the transfer encoding asked for (a private Charset: the
    email package's table of charsets is global and stays untouched)."""
    from email.charset import BASE64, QP, Charset
    from email.mime.text import MIMEText
    c = Charset(charset)
    c.body_encoding = BASE64 if cte == "base64" else QP
    return MIMEText(body, subtype, c)  # type: ignore[arg-type]


def eml(subject: str, body: str, *, charset: str = "utf-8", cte: str = "base64", html_body: str | None = None,
        attachments: dict[str, bytes] | None = None, raw_subject: bool = False) -> bytes:
    """An e-mail as a mailer sends it: the Subject RFC 2047-encoded in charset (or raw
    8-bit bytes, as some Chinese mailers write), the body base64 or
    quoted-printable, an HTML alternative, attachments."""
    from email.header import Header
    from email.mime.application import MIMEApplication
    from email.mime.multipart import MIMEMultipart

    text = _mime_text(body, "plain", charset, cte)
    if html_body is not None:
        alt = MIMEMultipart("alternative")
        alt.attach(text)
        alt.attach(_mime_text(html_body, "html", charset, cte))
        text = alt
    if attachments:
        msg = MIMEMultipart("mixed")
        msg.attach(text)
        for name, data in attachments.items():
            part = MIMEApplication(data)
            part.add_header("Content-Disposition", "attachment", filename=("gbk", "", name))
            msg.attach(part)
    else:
        msg = text
    msg["From"] = "zhang.san@example.cn"
    msg["To"] = "li.si@example.cn"
    msg["Date"] = "Tue, 01 Dec 2026 09:00:00 +0800"
    if not raw_subject:
        msg["Subject"] = Header(subject, charset)
    out = msg.as_bytes()
    if raw_subject:
        out = b"Subject: " + subject.encode(charset) + b"\n" + out
    return out


def mht(page_html: str, images: dict[str, bytes] | None = None, charset: str = "utf-8") -> bytes:
    """A web archive as Chromium/IE save it: multipart/related, the page quoted-printable, images base64."""
    from email.mime.image import MIMEImage
    from email.mime.multipart import MIMEMultipart

    msg = MIMEMultipart("related", type="text/html")
    msg["From"] = "<Saved by Blink>"
    msg["Subject"] = "page"
    msg["Snapshot-Content-Location"] = "https://example.cn/notice.html"
    page = _mime_text(page_html, "html", charset, "quoted-printable")
    page["Content-Location"] = "https://example.cn/notice.html"
    msg.attach(page)
    for name, data in (images or {}).items():
        img = MIMEImage(data, "png")
        img["Content-Location"] = f"https://example.cn/{name}"
        msg.attach(img)
    return msg.as_bytes()
