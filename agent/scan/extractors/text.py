"""Plain text: UTF-8, GB18030/GBK, UTF-16/32 with or without BOM, the 7-bit forms of
Chinese (ISO-2022-CN, ISO-2022-JP-2, HZ, UTF-7, which `iconv` writes and which read
as harmless ASCII otherwise), and whatever charset-normalizer recognises. One chunk
per line; the first lines are where a marking stands (first_page_top)."""
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


def _utf32_guess(data: bytes) -> str | None:
    """UTF-32 without a BOM: every unit of Chinese or Latin text has a zero high byte
    pair (the BMP), at one end or the other; decode strictly to be sure."""
    if len(data) < 8 or len(data) % 4:
        return None
    sample = data[:4096]
    for enc, hi in (("utf-32-le", sample[2::4] + sample[3::4]), ("utf-32-be", sample[0::4] + sample[1::4])):
        if hi.count(0) >= 0.99 * len(hi):
            try:
                text = data.decode(enc)
            except UnicodeDecodeError:
                continue
            if sum(ch.isprintable() or ch in "\r\n\t" for ch in text[:1024]) >= 0.95 * min(len(text), 1024):
                return enc
    return None


_ISO2022_CN = re.compile(rb"\x1b\$\)([AEGH])")   # designations of G1: GB2312, ISO-IR-165, CNS 11643 planes
_UTF7_RUN = re.compile(rb"\+[A-Za-z0-9/+]{3,}")


def _iso2022_cn(data: bytes) -> str:
    """ISO-2022-CN(-EXT), which the standard library lacks: SO shifts to the G1 set
    designated last (GB2312 is read; a CNS 11643 plane comes out as U+FFFD), SI and
    every line end back to ASCII."""
    out, g1, shifted, i, n = [], b"A", False, 0, len(data)
    while i < n:
        m = _ISO2022_CN.match(data, i)
        if m:
            g1, i = m.group(1), m.end()
            continue
        b = data[i]
        if b == 0x0E:
            shifted, i = True, i + 1
        elif b == 0x0F:
            shifted, i = False, i + 1
        elif b == 0x1B:   # another escape (SS2 ESC N, a G2/G3 designation): skip it and its operands
            i += 2 if data[i + 1:i + 2] == b"N" else 4
            out.append("\ufffd")
        elif shifted and b > 0x20 and i + 1 < n and data[i + 1] > 0x20:
            pair = bytes((data[i] | 0x80, data[i + 1] | 0x80))
            out.append(pair.decode("gb2312", errors="replace") if g1 in (b"A", b"E") else "\ufffd")
            i += 2
        else:
            if b in (0x0A, 0x0D):
                shifted = False
            out.append(chr(b))
            i += 1
    return "".join(out)


_CJK = re.compile("[\u3400-\u9fff]")


def _cjk_count(text: str) -> int:
    return len(_CJK.findall(text, 0, 65536))


def _seven_bit(data: bytes) -> tuple[str, str] | None:
    """Chinese written in one of the 7-bit encodings, which also decode as ASCII."""
    if b"\x1b" in data:
        if _ISO2022_CN.search(data):
            return _iso2022_cn(data), "iso-2022-cn"
        # ISO-2022-KR designates its set once for the whole text (ESC $ ) C), which
        # ISO-2022-JP-2 passes over, leaving the shifts and the bytes they shift as they are
        for enc in ("iso2022_kr", "iso2022_jp_2") if b"\x1b$)C" in data else ("iso2022_jp_2", "iso2022_kr"):
            try:
                text = data.decode(enc)
            except UnicodeDecodeError:
                continue
            if "\x0e" not in text:
                return text, enc
    if b"~{" in data and b"~}" in data:
        try:
            text = data.decode("hz")
            if _cjk_count(text) >= 2:
                return text, "hz"
        except UnicodeDecodeError:
            pass
    if _UTF7_RUN.search(data):
        try:
            text = data.decode("utf-7")
        except UnicodeDecodeError:
            return None
        if _cjk_count(text) >= 2:   # "C++", "+86 10" and the like decode to nothing Chinese
            return text, "utf-7"
    return None


def _big5(data: bytes, as_gb: str) -> bool:
    """Whether text that GB18030 reads (it reads any Big5) is Big5 (traditional Chinese,
    cp950) instead: read as GB18030, Big5 gives many characters outside GB2312, the set
    that simplified Chinese text keeps to."""
    sample = as_gb[:16384]
    outside = len(sample) - len(sample.encode("gb2312", errors="ignore").decode("gb2312"))
    if outside < 2 or outside < 0.1 * len(sample):
        return False
    try:
        data.decode("cp950")
    except UnicodeDecodeError:
        return False
    return True


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
    if data.isascii():
        seven = _seven_bit(data)
        if seven:
            return seven
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    enc16 = _utf16_guess(data) or _utf32_guess(data)
    if enc16:
        return data.decode(enc16), enc16
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError:
        pass
    else:
        return (data.decode("cp950"), "cp950") if _big5(data, text) else (text, "gb18030")
    from charset_normalizer import from_bytes
    best = from_bytes(data[:65536]).best()
    if best is not None:
        return data.decode(best.encoding, errors="replace"), best.encoding
    return data.decode("utf-8", errors="replace"), "utf-8"


def looks_like_text(data: bytes) -> bool:
    """For bytes libmagic calls octet-stream: UTF-16 or UTF-32 without BOM, ISO-2022
    (7 bits with escapes), UTF-8 or GB18030 text."""
    head = data[:8192]
    if b"\x1b" in head and data.isascii():   # 7-bit Chinese, Korean, Japanese (ISO-2022): escapes and shifts
        return _seven_bit(data[:65536].rpartition(b"\n")[0] or data[:65536]) is not None
    if _utf16_guess(head[: len(head) // 2 * 2]) or _utf32_guess(head[: len(head) // 4 * 4]):
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
