"""E-mail (.eml) and web archives (.mht/.mhtml): MIME read with the standard
library. The Subject is the first line of the first page; text
bodies (plain or HTML, base64 or quoted-printable, any charset, GB2312/GBK read
as GB18030) follow; attachments and the non-text parts of a web archive are
extracted as members of their own type, like archive members."""
from __future__ import annotations

import email
import email.errors
import email.header
import posixpath
from email.message import Message

from . import html
from .base import Ctx, Incomplete, TopLines
from .text import decode

# headers that may carry a label; the Subject also opens the first page
_LABEL_HEADERS = ("Keywords", "Comments", "Sensitivity", "X-Classification", "X-Security-Classification",
                  "X-Sensitivity", "Classification", "Importance")
_GB = {"gb2312", "gbk", "gb_2312-80", "x-gbk", "cp936", "euc-cn"}
MAX_PARTS = 1000


def _bytes_text(raw: bytes, charset: str | None) -> str:
    cs = (charset or "").strip().lower()
    cs = "gb18030" if cs in _GB else cs  # mailers declare gb2312 and send GBK characters
    if cs:
        try:
            return raw.decode(cs)
        except (LookupError, UnicodeDecodeError):
            pass
    return decode(raw)[0]


def header_text(value: object) -> str:
    """A header's text: RFC 2047 encoded words decoded, raw 8-bit (GBK) bytes too."""
    if value is None:
        return ""
    s = value if isinstance(value, email.header.Header) else str(value)  # a Header keeps 8-bit bytes
    out: list[str] = []
    try:
        pieces = email.header.decode_header(s)  # type: ignore[arg-type]
    except email.errors.HeaderParseError:
        pieces = [(str(s), None)]
    for piece, cs in pieces:
        if isinstance(piece, bytes):
            out.append(_bytes_text(piece, cs))
        else:
            try:  # 8-bit bytes the parser kept as surrogates
                out.append(_bytes_text(piece.encode("ascii", "surrogateescape"), None))
            except UnicodeEncodeError:
                out.append(piece)
    return " ".join(" ".join(out).split())


def _text_lines(text: str, ctx: Ctx, top: TopLines, part: int) -> None:
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            ctx.add(top.zone(line), line, part=part, line=n)


class _Walk:
    def __init__(self, ctx: Ctx, top: TopLines):
        self.ctx, self.top, self.n = ctx, top, 0

    def part(self, msg: Message) -> None:
        self.n += 1
        if self.n > MAX_PARTS:
            raise Incomplete("limit_exceeded", f"{self.ctx.where()}: more than {MAX_PARTS} MIME parts")
        ctype = msg.get_content_type()
        if ctype == "message/rfc822":  # a forwarded message: a member of its own
            inner = msg.get_payload(0) if msg.is_multipart() else None
            if isinstance(inner, Message):
                self.ctx.descend(inner.as_bytes(), header_text(msg.get_filename()) or f"part{self.n}.eml")
            return
        if msg.is_multipart():
            parts = [p for p in msg.get_payload() if isinstance(p, Message)]
            if msg.get_content_subtype() == "alternative":  # one text, several renderings: read the richest
                texts = [p for p in parts if p.get_content_maintype() == "text"]
                parts = [texts[-1]] + [p for p in parts if p.get_content_maintype() != "text"] if texts else parts
            for p in parts:
                self.part(p)
            return
        raw = msg.get_payload(decode=True) or b""
        self.ctx.budget.take(len(raw), f"{self.ctx.where()}: MIME part {self.n}")
        name = header_text(msg.get_filename())
        attached = msg.get_content_disposition() == "attachment" or (name and msg.get_content_maintype() != "text")
        if not attached and ctype == "text/html":
            html.emit(html_text(raw, msg.get_content_charset()), self.ctx, self.top, part=self.n)
        elif not attached and msg.get_content_maintype() == "text" and ctype != "text/css":
            _text_lines(_bytes_text(raw, msg.get_content_charset()), self.ctx, self.top, self.n)
        elif ctype != "text/css" and raw:
            where = name or posixpath.basename(str(msg.get("Content-Location", "")).split("?")[0]) or f"part{self.n}"
            self.ctx.descend(raw, where)


def html_text(raw: bytes, charset: str | None) -> str:
    return _bytes_text(raw, charset) if charset else html.decode_html(raw)


def mail(data: bytes, ctx: Ctx) -> None:
    msg = email.message_from_bytes(data)
    if not msg.keys():
        raise Incomplete("corrupt", f"{ctx.where()}: no message headers")
    top = TopLines()
    subject = header_text(msg.get("Subject"))
    if subject:  # the title of the message: where a marking stands (one chunk, so no double evidence)
        ctx.add(top.zone(subject), subject, header="Subject")
    for key in _LABEL_HEADERS:
        value = header_text(msg.get(key))
        if value:
            ctx.add("metadata", value, key=key)
    _Walk(ctx, top).part(msg)
