"""Small marked and unmarked documents for the copy-enforcement tests and bench.

Built by hand (zip + XML, a one-page PDF) so the tests depend only on the
formats, not on office software."""
from __future__ import annotations

import io
import os
import zipfile

MARK = "机密★1年"


def docx(first_line: str, body: str = "本文件为工作总结。") -> bytes:
    ct = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
          '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
          '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
          '<Default Extension="xml" ContentType="application/xml"/>'
          '<Override PartName="/word/document.xml" '
          'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
          '</Types>')
    rels = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
            'officeDocument" Target="word/document.xml"/></Relationships>')
    para = "".join(f"<w:p><w:r><w:t>{t}</w:t></w:r></w:p>" for t in (first_line, body) if t)
    doc = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
           '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
           f'<w:body>{para}</w:body></w:document>')
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", ct)
        z.writestr("_rels/.rels", rels)
        z.writestr("word/document.xml", doc)
    return buf.getvalue()


def pdf(lines: list[str]) -> bytes:
    """A one-page PDF with Helvetica text lines from the top of the page (ASCII only)."""
    text = "BT /F1 14 Tf 72 760 Td 18 TL " + " ".join(
        "(" + l.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ") Tj T*" for l in lines) + " ET"
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(text) + text.encode() + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for i, o in enumerate(objs, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % i + o + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1))
    for off in offsets:
        out.write(b"%010d 00000 n \n" % off)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref))
    return out.getvalue()


def gbk_text(marked: bool, extra: int = 0) -> bytes:
    head = f"{MARK}\n" if marked else ""
    body = "关于二〇二六年度工作安排的通知\n各部门:现将有关事项通知如下。\n"
    return (head + body + "正文内容。" * extra).encode("gbk")


def marked_set() -> dict[str, bytes]:
    return {"报告.docx": docx(MARK), "brief.pdf": pdf(["SECRET//NOFORN", "Quarterly plan"]),
            "通知.txt": gbk_text(True)}


def unmarked_set() -> dict[str, bytes]:
    return {"总结.docx": docx("年度工作总结", "商业秘密保护协议的签订情况良好。"),
            "notes.pdf": pdf(["Meeting notes", "Nothing classified here"]),
            "readme.txt": gbk_text(False)}


def filler(size: int, marked: bool) -> bytes:
    """A text file of about `size` bytes, marked at the top or not."""
    head = (MARK + "\n").encode("utf-8") if marked else b""
    line = "第一条 为了加强管理,制定本办法。\n".encode("utf-8")
    n = max(0, size - len(head)) // len(line) + 1
    return (head + line * n)[:max(size, len(head))]


def random_bytes(size: int) -> bytes:
    return os.urandom(size)


def unique_text(size: int, marked: bool) -> bytes:
    """A UTF-8 text file of exactly `size` bytes (at least the marking's line) that no other
    file shares a 64-byte piece with: random hex lines, marked at the top or not. For
    searching the raw device for pieces of a blocked file."""
    head = (MARK + "\n").encode("utf-8") if marked else "工作记录\n".encode("utf-8")
    n = max(0, size - len(head))
    body = bytearray()
    while len(body) < n:
        body += os.urandom(31).hex().encode() + b"\n"
    return head + bytes(body[:n])
