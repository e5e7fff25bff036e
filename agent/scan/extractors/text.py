"""Plain text: UTF-8, GB18030/GBK, UTF-16/32 with or without BOM, and whatever
charset-normalizer recognises. One chunk per line; the first lines are where a
marking stands (first_page_top)."""
from __future__ import annotations

import codecs
import re

from .base import Ctx, TopLines
from ..verdict import TextChunk

_BOMS = ((codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"), (codecs.BOM_UTF8, "utf-8"),
         (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))


def _utf16_guess(data: bytes) -> str | None:
    """UTF-16 without a BOM: text in it has NUL high bytes (Latin) or a steady
    pattern of CJK code units; decode strictly to be sure."""
    if len(data) < 4 or len(data) % 2:
        return None
    sample = data[:4096]
    even, odd = sample[0::2], sample[1::2]
    for enc, hi in (("utf-16-le", odd), ("utf-16-be", even)):
        try:
            text = data.decode(enc)
        except UnicodeDecodeError:
            continue
        nul_share = hi.count(0) / max(1, len(hi))
        cjk = sum(1 for ch in text[:2048] if "\u3000" <= ch <= "\u9fff" or "\uff00" <= ch <= "\uffef")
        printable = sum(1 for ch in text[:2048] if ch.isprintable() or ch in "\r\n\t")
        if printable >= 0.95 * min(len(text), 2048) and (nul_share > 0.3 or cjk > 0.3 * min(len(text), 2048)):
            return enc
    return None


def decode(data: bytes, bom: bool = True) -> tuple[str, str]:
    """(text, encoding name). A byte-order mark is believed only when what follows it
    reads in its encoding: a UTF-8 or GB18030 text behind a UTF-16 mark (which would
    read as other Chinese characters) or GBK bytes behind a UTF-8 mark are read for
    what they are."""
    for mark, enc in _BOMS if bom else ():
        if data.startswith(mark):
            rest = data[len(mark):]
            try:
                text = rest.decode(enc)
            except UnicodeDecodeError:
                return decode(rest, bom=False)
            # UTF-16/32 text has NUL bytes (every ASCII character and line break has one)
            if enc != "utf-8" and b"\x00" not in rest[:65536]:
                return decode(rest, bom=False)
            return text, enc
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    enc16 = _utf16_guess(data)
    if enc16:
        return data.decode(enc16), enc16
    try:
        return data.decode("gb18030"), "gb18030"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes
    best = from_bytes(data[:65536]).best()
    if best is not None:
        return data.decode(best.encoding, errors="replace"), best.encoding
    return data.decode("utf-8", errors="replace"), "utf-8"


def looks_like_text(data: bytes) -> bool:
    """For bytes libmagic calls octet-stream: UTF-16 without BOM, or GB18030 text."""
    head = data[:8192]
    if _utf16_guess(head[: len(head) // 2 * 2]):
        return True
    if b"\x00" in head:
        return False
    for enc in ("utf-8", "gb18030"):
        for cut in range(4):  # the sample may end inside a multi-byte character
            try:
                text = head[: len(head) - cut].decode(enc)
            except UnicodeDecodeError:
                continue
            controls = sum(1 for ch in text if ch < " " and ch not in "\r\n\t\f")
            return controls <= len(text) // 100
    return False


_OTHER_BREAKS = "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_BREAKS = re.compile(f"\r\n?|[{_OTHER_BREAKS}]")  # what str.splitlines splits on, besides \n


def text(data: bytes, ctx: Ctx) -> None:
    content, _enc = decode(data)
    top = TopLines()
    if "\r" in content or any(ch in content for ch in _OTHER_BREAKS):
        content = _BREAKS.sub("\n", content)
    pos, n, end = 0, 0, len(content)
    while pos < end and top.left > 0:  # the first lines, where a marking stands
        nl = content.find("\n", pos)
        nl = end if nl < 0 else nl
        line = content[pos:nl]
        n += 1
        pos = nl + 1
        if line.strip():
            ctx.add(top.zone(line), line, line=n)
    # the rest as one block that the rules read line by line: big text files are mostly this
    if pos < end:
        rest = content[pos:]
        del content
        if not rest.isspace():
            loc = {"line": n + 1, "member": ctx.member} if ctx.member else {"line": n + 1}
            ctx.chunks.append(TextChunk("body", rest, loc, multiline=True))
