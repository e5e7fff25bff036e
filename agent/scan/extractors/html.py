"""HTML and XHTML: the text a browser shows, line by line, without the markup.
Scripts, styles and comments are dropped (CSS must not fill the "first
lines"); <title> and <meta name=keywords|description|classification...> are
metadata. The charset comes from a BOM, the <meta> declaration, else the
plain-text decoder (GB18030 and the rest)."""
from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Iterator

from .base import Ctx, TopLines
from .text import decode

# elements that end a line in a browser
_BLOCK = {"p", "div", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "li", "dt", "dd", "tr", "td", "th",
          "table", "ul", "ol", "dl", "section", "article", "header", "footer", "aside", "nav", "blockquote",
          "pre", "address", "figcaption", "caption", "center", "form", "main", "title", "body", "html", "head"}
_HIDDEN = {"script", "style", "template", "noscript", "svg", "math"}
_META_KEYS = {"keywords", "description", "subject", "classification", "security", "sensitivity", "密级", "title"}
_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_-]+)""", re.I)


class _Lines(HTMLParser):
    """Collects (line, in a table) and metadata (key, value)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[tuple[str, bool]] = []
        self.meta: list[tuple[str, str]] = []
        self._buf: list[str] = []
        self._hidden = 0
        self._tables = 0
        self._title: list[str] | None = None

    def _flush(self) -> None:
        line = "".join(self._buf)
        self._buf = []
        for part in line.split("\n"):
            if part.strip():
                self.lines.append((part, self._tables > 0))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._title = []
            return
        if tag == "meta":
            a = {k.lower(): (v or "") for k, v in attrs}
            key = a.get("name", a.get("property", "")).lower().removeprefix("dc.").removeprefix("og:")
            if key in _META_KEYS and a.get("content", "").strip():
                self.meta.append((key, a["content"]))
            return
        if tag in _HIDDEN:
            self._hidden += 1
        if tag in _BLOCK:
            self._flush()
        if tag == "table":
            self._tables += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "title" and self._title is not None:
            title = "".join(self._title).strip()
            if title:
                self.meta.append(("title", title))
            self._title = None
            return
        if tag in _HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        if tag in _BLOCK:
            self._flush()
        if tag == "table":
            self._tables = max(0, self._tables - 1)

    def handle_data(self, data: str) -> None:
        if self._title is not None:
            self._title.append(data)
        elif not self._hidden:
            self._buf.append(data.replace("\r", "").replace("\n", " ") if not data.isspace() else " ")


def decode_html(data: bytes) -> str:
    """The text of an HTML file: a BOM, then a declared charset, then the text decoder's guess."""
    if not data.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        m = _CHARSET.search(data[:4096])
        if m:
            enc = m.group(1).decode("ascii").lower()
            enc = "gb18030" if enc in ("gb2312", "gbk", "gb_2312-80", "x-gbk") else enc  # GB18030 covers them
            try:
                return data.decode(enc)
            except (LookupError, UnicodeDecodeError):
                pass
    return decode(data)[0]


def lines(markup: str) -> tuple[Iterator[tuple[str, bool]], list[tuple[str, str]]]:
    """(lines with whether each stands in a table, metadata pairs) of an HTML text."""
    p = _Lines()
    p.feed(markup)
    p.close()
    p._flush()
    return iter(p.lines), p.meta


def emit(markup: str, ctx: Ctx, top: TopLines, **where: object) -> None:
    """The chunks of one HTML document: metadata, then the lines, the first ones
    outside tables first_page_top (top is shared with an e-mail's subject)."""
    body, meta = lines(markup)
    for key, value in meta:
        ctx.add("metadata", value, key=key, **where)
    for n, (line, in_table) in enumerate(body, 1):
        zone = "body" if in_table else top.zone(line)
        loc: dict[str, object] = {**where, "line": n}
        if in_table:
            loc["table"] = True
        ctx.add(zone, line, **loc)


def html(data: bytes, ctx: Ctx) -> None:
    emit(decode_html(data), ctx, TopLines())
