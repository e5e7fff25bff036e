"""Legacy OLE2 formats (olefile): Word .doc and WPS .wps through the piece table;
Excel .xls and WPS .et through their records (BIFF8's string table, Excel 2 to 95's
strings in the workbook's code page, GBK on a Chinese PC; comments and text boxes);
PowerPoint .ppt and WPS .dps through the text atoms, the slides' header and footer
and comments. SummaryInformation is metadata. An OLE file holding EncryptionInfo is
an encrypted Office document."""
from __future__ import annotations

import codecs
import io
import struct

import olefile

from .base import Ctx, Incomplete, TopLines
from .xmlutil import cells_to_chunks, header_footer_pieces


def _open(data: bytes, ctx: Ctx) -> olefile.OleFileIO:
    if not data.startswith(olefile.MAGIC):
        # magic also names the pre-OLE binary formats (Excel 2-4 BIFF, Word 2): not read
        raise Incomplete("unsupported", f"{ctx.where()}: pre-1997 Office binary format (not an OLE container)")
    try:
        return olefile.OleFileIO(io.BytesIO(data))
    except Exception as exc:
        raise Incomplete("corrupt", f"{ctx.where()}: damaged OLE container: {exc}") from None


def _stream(ole: olefile.OleFileIO, name: str, ctx: Ctx) -> bytes:
    size = ole.get_size(name)
    ctx.budget.take(size, f"{ctx.where()}:{name}")
    return ole.openstream(name).read()


def _summary(ole: olefile.OleFileIO, ctx: Ctx) -> None:
    try:
        meta = ole.get_metadata()
    except Exception:
        return
    # 8-bit strings are in the property set's code page; Chinese Windows writes 936
    cp = getattr(meta, "codepage", None) or 936
    encoding = {65001: "utf-8", 1200: "utf-16-le", 936: "gbk"}.get(cp, f"cp{cp}")
    try:
        "".encode(encoding)
    except LookupError:
        encoding = "gbk"
    for attr in ("title", "subject", "author", "keywords", "comments", "category", "company", "manager"):
        value = getattr(meta, attr, None)
        if isinstance(value, bytes):
            value = value.decode(encoding, errors="replace")
        if isinstance(value, str) and value.strip():
            ctx.add("metadata", value, key=attr)


def encrypted(data: bytes, ctx: Ctx) -> None:
    raise Incomplete("encrypted", f"{ctx.where()}: password-protected Office document")


def _native(raw: bytes) -> tuple[str, bytes] | None:
    """An OLE 1.0 package (the \\x01Ole10Native stream of a file embedded with "Insert >
    Object > from file"): size, 2, label, source path, 4 bytes, temp path (its length
    first), data (its length first). The label is in the ANSI code page (GBK)."""
    try:
        pos = 6
        end = raw.index(b"\0", pos)
        label = raw[pos:end].decode("gb18030", errors="replace")
        pos = raw.index(b"\0", end + 1) + 1 + 4     # past the source path and the 4 bytes
        (n,) = struct.unpack_from("<I", raw, pos)
        pos += 4 + n
        (size,) = struct.unpack_from("<I", raw, pos)
    except (ValueError, struct.error):
        return None
    body = raw[pos + 4:pos + 4 + size]
    return (label or "package", body) if len(body) == size else None


# streams of an embedding container that are a whole file: an Office 2007+ document
# ("Package"), a PDF or other file kept by its application ("CONTENTS"), LibreOffice's ODF
_EMBEDDED_STREAMS = ("package", "contents", "embeddedodf")


def other(data: bytes, ctx: Ctx) -> None:
    """An OLE container of no Office application: an object embedded in a document.
    Its embedded file is read as a member; otherwise it is not inspectable."""
    ole = _open(data, ctx)
    _summary(ole, ctx)
    found = False
    for entry in ole.listdir(streams=True, storages=False):
        if len(entry) != 1:
            continue
        name = entry[0].lower()
        if name == "\x01ole10native":
            native = _native(_stream(ole, entry[0], ctx))
            if native is not None:
                ctx.descend(native[1], native[0])
                found = True
        elif name in _EMBEDDED_STREAMS:
            ctx.descend(_stream(ole, entry[0], ctx), entry[0])
            found = True
    if not found:
        ctx.problem("unsupported", f"{ctx.where()}: OLE container of an unknown application")


# -- Word / WPS text ----------------------------------------------------------

def _doc_text(word: bytes, table: bytes) -> tuple[str, int, int, int]:
    """The document's characters in CP order, and ccpText, ccpFtn, ccpHdd."""
    fc_clx, lcb_clx = struct.unpack_from("<II", word, 0x1A2)
    ccp_text, ccp_ftn, ccp_hdd = struct.unpack_from("<iii", word, 0x4C)
    clx = table[fc_clx:fc_clx + lcb_clx]
    pos = 0
    while pos < len(clx) and clx[pos] == 0x01:  # Prc entries (formatting) before the piece table
        (cb,) = struct.unpack_from("<H", clx, pos + 1)
        pos += 3 + cb
    if pos >= len(clx) or clx[pos] != 0x02:
        raise ValueError("no piece table")
    (lcb,) = struct.unpack_from("<I", clx, pos + 1)
    plc = clx[pos + 5:pos + 5 + lcb]
    n = (len(plc) - 4) // 12
    cps = struct.unpack_from(f"<{n + 1}I", plc, 0)
    out = []
    for i in range(n):
        pcd = plc[4 * (n + 1) + 8 * i: 4 * (n + 1) + 8 * i + 8]
        (fc,) = struct.unpack_from("<I", pcd, 2)
        count = cps[i + 1] - cps[i]
        if count <= 0 or count > 50_000_000:
            continue
        if fc & 0x40000000:  # compressed: 8-bit characters at fc/2
            start = (fc & 0x3FFFFFFF) // 2
            out.append(word[start:start + count].decode("cp1252", errors="replace"))
        else:
            out.append(word[fc:fc + 2 * count].decode("utf-16-le", errors="replace"))
    return "".join(out), ccp_text, ccp_ftn, ccp_hdd


def doc(data: bytes, ctx: Ctx) -> None:
    ole = _open(data, ctx)
    _summary(ole, ctx)
    word = _stream(ole, "WordDocument", ctx)
    if len(word) < 0x1AA:
        raise Incomplete("corrupt", f"{ctx.where()}: WordDocument stream too short")
    (flags,) = struct.unpack_from("<H", word, 0x0A)
    if flags & 0x0100:
        raise Incomplete("encrypted", f"{ctx.where()}: password-protected Word document")
    table_name = "1Table" if flags & 0x0200 else "0Table"
    if not ole.exists(table_name):
        raise Incomplete("corrupt", f"{ctx.where()}: {table_name} stream missing")
    try:
        text, ccp_text, ccp_ftn, ccp_hdd = _doc_text(word, _stream(ole, table_name, ctx))
    except (struct.error, ValueError) as exc:
        raise Incomplete("corrupt", f"{ctx.where()}: piece table unreadable: {exc}") from None
    top = TopLines()
    stories = ((0, ccp_text, None), (ccp_text, ccp_text + ccp_ftn, "body"),
               (ccp_text + ccp_ftn, ccp_text + ccp_ftn + ccp_hdd, "header"), (ccp_text + ccp_ftn + ccp_hdd, len(text), "body"))
    n = 0
    for start, end, zone in stories:
        part = text[max(0, start):max(0, end)]
        for para in part.replace("\x07", "\r").replace("\x0b", "\r").replace("\x0c", "\r").split("\r"):
            para = "".join(ch for ch in para if ch >= " " or ch == "\t")
            if para.strip():
                n += 1
                ctx.add(zone or top.zone(para), para, paragraph=n)


# -- Excel / WPS spreadsheets -------------------------------------------------

class _Records:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def __iter__(self):
        d = self.data
        while self.pos + 4 <= len(d):
            typ, size = struct.unpack_from("<HH", d, self.pos)
            body = d[self.pos + 4:self.pos + 4 + size]
            self.pos += 4 + size
            yield typ, body


def _sst(first: bytes, continues: list[bytes]) -> list[str]:
    """The BIFF8 shared string table; strings may be split across CONTINUE records,
    where each continuation restarts with a flags byte."""
    blocks = [first] + continues
    bi, pos = 0, 8
    out: list[str] = []
    (_total, unique) = struct.unpack_from("<II", first, 0)

    def next_block() -> None:  # the string goes on in the next CONTINUE record
        nonlocal bi, pos
        bi += 1
        pos = 0
        if bi >= len(blocks):
            raise IndexError

    def need(n: int) -> None:
        if pos + n > len(blocks[bi]):
            next_block()

    def read(n: int) -> bytes:
        nonlocal pos
        need(n)
        b = blocks[bi][pos:pos + n]
        pos += n
        return b

    try:
        for _ in range(unique):
            cch = struct.unpack("<H", read(2))[0]
            flags = read(1)[0]
            runs = struct.unpack("<H", read(2))[0] if flags & 0x08 else 0
            ext = struct.unpack("<I", read(4))[0] if flags & 0x04 else 0
            chars: list[str] = []
            left, wide = cch, bool(flags & 0x01)
            while left > 0:
                if pos >= len(blocks[bi]):
                    next_block()
                    wide = bool(blocks[bi][0] & 0x01)
                    pos = 1
                avail = (len(blocks[bi]) - pos) // (2 if wide else 1)
                take = min(left, avail)
                raw = blocks[bi][pos:pos + take * (2 if wide else 1)]
                pos += len(raw)
                chars.append(raw.decode("utf-16-le" if wide else "latin-1", errors="replace"))
                left -= take
                if take == 0:
                    raise IndexError
            skip = 4 * runs + ext
            while skip > 0:
                avail = len(blocks[bi]) - pos
                if avail <= 0:
                    next_block()
                    continue
                step = min(avail, skip)
                pos += step
                skip -= step
            out.append("".join(chars))
    except (IndexError, struct.error):
        pass  # a short table keeps what was read
    return out


def _col(c: int) -> str:
    s = ""
    c += 1
    while c:
        c, r = divmod(c - 1, 26)
        s = chr(65 + r) + s
    return s


# BOF record types and the BIFF version each starts (0x0809: the version is in its body)
_BOFS = {0x0009: 2, 0x0209: 3, 0x0409: 4, 0x0809: 0}
_GLOBALS = (0x0005, 0x0100)   # BOF document types of a workbook's globals (BIFF5-8, BIFF4W)
# FORMULA records (BIFF2, 3, 4, 5-8) and what may stand between one and its STRING result
_FORMULA = (0x0006, 0x0206, 0x0406, 0x04BC, 0x0221, 0x0236)
# BIFF8 formula tokens that only join text: their sizes after the token byte. Constants
# (tStr, read apart), `&`, brackets, spaces, CONCATENATE, and cell references (whose
# text is not known here). A formula made of nothing else shows its constants joined.
_JOINING = {0x08: 0, 0x15: 0, 0x24: 4, 0x25: 8, 0x3A: 6, 0x3B: 10, 0x2C: 4, 0x2D: 8}
_CONCATENATE = 336   # its number in tFunc/tFuncVar
_ATTR_SPACE = (0x01, 0x40, 0x41)   # tAttrVolatile, tAttrSpace, both


def _joined_constants(rgce: bytes) -> str | None:
    """The text a BIFF8 formula such as ="机密"&"★1年" shows, from its constants, when
    it does nothing but join text; None for any other formula (IF, comparisons, sums:
    their result cannot be known without computing them)."""
    try:
        return _joins(rgce)
    except (IndexError, struct.error):   # a token cut short
        return None


def _joins(rgce: bytes) -> str | None:
    out: list[str] = []
    i = 0
    while i < len(rgce):
        ptg = rgce[i]
        base = ptg if ptg < 0x20 else (ptg & 0x1F) | 0x20
        i += 1
        if base == 0x17:   # tStr: cch, flags, characters
            cch, wide = rgce[i], rgce[i + 1] & 1
            out.append(rgce[i + 2:i + 2 + cch * (2 if wide else 1)].decode("utf-16-le" if wide else "latin-1",
                                                                        errors="replace"))
            i += 2 + cch * (2 if wide else 1)
        elif base == 0x19 and rgce[i] in _ATTR_SPACE:
            i += 3
        elif base == 0x22 and struct.unpack_from("<H", rgce, i + 1)[0] & 0x7FFF == _CONCATENATE:
            i += 3
        elif base == 0x21 and struct.unpack_from("<H", rgce, i)[0] == _CONCATENATE:
            i += 2
        elif base in _JOINING:
            i += _JOINING[base]
        else:
            return None
    return "".join(out) if out and i == len(rgce) else None


def _codec(codepage: int) -> str:
    """The Python codec of a CODEPAGE record: 936 is GBK, 950 Big5, 1200 UTF-16,
    0x8000 Mac Roman; cp1252 where the number names no codec."""
    named = {1200: "utf-16-le", 0x8000: "mac-roman", 10000: "mac-roman", 367: "ascii", 0x8001: "cp1252"}
    name = named.get(codepage, f"cp{codepage}")
    try:
        codecs.lookup(name)
    except LookupError:
        return "cp1252"
    return name


class _Biff:
    """How the strings of one workbook's version are written: BIFF8's have a flags byte
    (UTF-16 or its low bytes); BIFF2-7's are bytes in the workbook's code page."""

    def __init__(self, version: int):
        self.version, self.codec = version, "cp1252"

    def string(self, body: bytes, at: int, len_bytes: int) -> str:
        """The string whose length (1 or 2 bytes) is at `at`."""
        cch = body[at] if len_bytes == 1 else struct.unpack_from("<H", body, at)[0]
        at += len_bytes
        if self.version < 8:
            return body[at:at + cch].decode(self.codec, errors="replace")
        wide = body[at] & 1
        return body[at + 1:at + 1 + cch * (2 if wide else 1)].decode("utf-16-le" if wide else "latin-1",
                                                                     errors="replace")


def _biff_version(typ: int, body: bytes) -> int:
    if _BOFS[typ]:
        return _BOFS[typ]
    return 8 if len(body) >= 2 and struct.unpack_from("<H", body)[0] >= 0x0600 else 5


def _bare_biff(data: bytes) -> bool:
    """Excel 2 to 4 wrote the record stream itself as the file, starting with its BOF."""
    return len(data) >= 8 and struct.unpack_from("<H", data)[0] in _BOFS and struct.unpack_from("<H", data, 2)[0] <= 20


def xls(data: bytes, ctx: Ctx) -> None:
    if data.startswith(olefile.MAGIC):
        ole = _open(data, ctx)
        _summary(ole, ctx)
        wb = _stream(ole, "Workbook" if ole.exists("Workbook") else "Book", ctx)
    elif _bare_biff(data):
        wb = data
    else:
        _open(data, ctx)   # says what the file is not
        return
    _workbook(wb, ctx)


def _workbook(wb: bytes, ctx: Ctx) -> None:
    """Cells, formula results, page headers and footers, cell comments and text boxes
    (TXO) of every sheet (BIFF2 to 8)."""
    biff: _Biff | None = None
    sst: list[str] = []
    sheets: list[str] = []
    sheet_cells: list[list[tuple[int, str, str]]] = []
    in_sheet, depth = False, 0   # depth: a chart embedded in a sheet is a substream inside it
    sst_first: bytes | None = None
    sst_cont: list[bytes] = []
    last, formula = None, (0, 0)
    txo: list = []   # a comment's or text box's text still to come in CONTINUE records: [chars left, pieces]
    notes: list[list[str]] = []   # Excel 2-95 comments: [sheet, text]
    objects = 0

    def text_object_done() -> None:
        nonlocal objects
        if txo and txo[1]:
            objects += 1
            ctx.add("body", "".join(txo[1]), sheet=sheet_name() if in_sheet else "", object=objects)
        txo.clear()

    def cell(row: int, col: int, text: str) -> None:
        if in_sheet:
            sheet_cells[-1].append((row + 1, f"{_col(col)}{row + 1}", text))

    def sheet_name() -> str:
        n = len(sheet_cells) - 1
        return sheets[n] if n < len(sheets) else f"Sheet{n + 1}"

    for typ, body in _Records(wb):
        if typ in _BOFS:   # a new substream: the globals, a sheet, a chart
            depth += 1
            if biff is None:
                biff = _Biff(_biff_version(typ, body))
            if depth == 1:
                dt = struct.unpack_from("<H", body, 2)[0] if len(body) >= 4 else 0x0010
                in_sheet = dt not in _GLOBALS
                if in_sheet:
                    if sst_first is not None and not sst:
                        sst = _sst(sst_first, sst_cont)
                    sheet_cells.append([])
            last = typ
            continue
        if typ == 0x000A:  # EOF of a substream
            depth = max(0, depth - 1)
        if biff is None:
            raise Incomplete("corrupt", f"{ctx.where()}: workbook stream without a BOF record")
        if typ == 0x003C and txo and txo[0] > 0:   # the text of the TXO before it
            wide = biff.version == 8 and body[:1] == b"\x01"
            piece = body[1:] if biff.version == 8 else body
            take = min(txo[0], len(piece) // (2 if wide else 1))
            codec = ("utf-16-le" if wide else "latin-1") if biff.version == 8 else biff.codec
            txo[1].append(piece[:take * (2 if wide else 1)].decode(codec, errors="replace"))
            txo[0] -= max(take, 1)
            if txo[0] <= 0:
                text_object_done()
            continue
        if txo:
            text_object_done()   # cut short: what came counts
        try:
            if typ == 0x002F:  # FILEPASS
                raise Incomplete("encrypted", f"{ctx.where()}: password-protected workbook")
            if typ == 0x0042 and len(body) >= 2:  # CODEPAGE
                biff.codec = _codec(struct.unpack_from("<H", body)[0])
            elif typ == 0x00FC:
                sst_first, sst_cont = body, []
            elif typ == 0x003C and last == 0x00FC:
                sst_cont.append(body)
                continue
            elif typ == 0x0085 and len(body) > 7:  # BOUNDSHEET (BIFF5-8)
                sheets.append(biff.string(body, 6, 1))
            elif typ == 0x008F and len(body) > 4:  # BUNDLESHEET (BIFF4W)
                sheets.append(biff.string(body, 4, 1))
            elif typ == 0x00FD and len(body) >= 10:  # LABELSST
                row, col, _xf, isst = struct.unpack_from("<HHHI", body)
                if isst < len(sst):
                    cell(row, col, sst[isst])
            elif typ in (0x0204, 0x00D6) and len(body) >= 8:  # LABEL, RSTRING (rich text)
                row, col = struct.unpack_from("<HH", body)
                cell(row, col, biff.string(body, 6, 2))
            elif typ == 0x0004 and biff.version == 2 and len(body) >= 8:  # BIFF2 LABEL
                row, col = struct.unpack_from("<HH", body)
                cell(row, col, biff.string(body, 7, 1))
            elif typ in _FORMULA[:3] and len(body) >= 4:  # FORMULA: its STRING result follows
                formula = struct.unpack_from("<HH", body)
                if biff.version == 8 and len(body) >= 22 and body[12:14] != b"\xff\xff":
                    # no text result was stored (LibreOffice writes 0 for a formula's
                    # text): a formula that only joins constants shows them
                    cce = struct.unpack_from("<H", body, 20)[0]
                    text = _joined_constants(body[22:22 + cce])
                    if text:
                        cell(*formula, text)
            elif (typ == 0x0207 or (typ == 0x0007 and biff.version == 2)) and len(body) >= 2 and last in _FORMULA:
                cell(*formula, biff.string(body, 0, 1 if typ == 0x0007 else 2))   # a formula's text result
            elif typ == 0x001C and biff.version < 8 and len(body) >= 6:  # NOTE: a cell comment (BIFF2-7)
                row = struct.unpack_from("<H", body)[0]
                text = biff.string(body, 4, 2)
                if row == 0xFFFF and notes:   # a long comment goes on in the next NOTE
                    notes[-1][1] += text
                else:
                    notes.append([sheet_name() if in_sheet else "", text])
            elif typ == 0x01B6 and len(body) >= 12:  # TXO: a cell comment's or a text box's text follows
                cch = struct.unpack_from("<H", body, 10)[0]
                if cch:
                    txo[:] = [cch, []]
            elif typ in (0x0014, 0x0015) and body and in_sheet:  # HEADER, FOOTER
                text = biff.string(body, 0, 2 if biff.version == 8 else 1)
                for piece in header_footer_pieces(text):
                    ctx.add("header" if typ == 0x0014 else "footer", piece, sheet=sheet_name())
        except (struct.error, IndexError):
            pass   # a short record: the rest of the workbook is still read
        last = typ
    text_object_done()
    for sheet, text in notes:
        objects += 1
        ctx.add("body", text, sheet=sheet, object=objects)
    if sst_first is not None and not sst:
        sst = _sst(sst_first, sst_cont)
    for i, cells in enumerate(sheet_cells):
        cells_to_chunks(ctx, sheets[i] if i < len(sheets) else f"Sheet{i + 1}", i == 0, cells)
    if not sheet_cells:
        for s in sst:  # no cell records found: the strings alone, as body
            ctx.add("body", s)


# -- PowerPoint / WPS presentations ---------------------------------------------

# containers whose CString atoms are text a reader sees, by the atom's instance: the
# header and footer of the slides or notes (HeadersFootersContainer: 1 header, 2 footer;
# 0 is the date's format) and a comment (Comment10Container: 1 its text; 0 the author)
_PPT_STRING_HOLDERS = {0x0FD9: {1: "header", 2: "footer"}, 0x2EE0: {1: "body"}}


def ppt(data: bytes, ctx: Ctx) -> None:
    ole = _open(data, ctx)
    _summary(ole, ctx)
    if ole.exists("EncryptedSummary"):
        raise Incomplete("encrypted", f"{ctx.where()}: password-protected presentation")
    stream = _stream(ole, "PowerPoint Document", ctx)
    texts: list[tuple[int | None, str]] = []
    slide: list[int] = [0]  # SlidePersistAtoms seen: in a SlideListWithText each starts a slide's texts

    def walk(start: int, end: int, depth: int, parent: int) -> None:
        pos = start
        while pos + 8 <= end:
            ver_inst, typ, size = struct.unpack_from("<HHI", stream, pos)
            body_end = min(pos + 8 + size, end)
            if (ver_inst & 0x000F) == 0x000F and depth < 32:
                walk(pos + 8, body_end, depth + 1, typ)
            elif typ == 0x0FBA and parent in _PPT_STRING_HOLDERS:  # CString: a footer, a header, a comment
                zone = _PPT_STRING_HOLDERS[parent].get(ver_inst >> 4)
                if zone:
                    text = stream[pos + 8:body_end].decode("utf-16-le", errors="replace")
                    if text.strip():
                        ctx.add(zone, text, block=len(texts) + 1)
            elif typ == 0x03F3:  # SlidePersistAtom
                slide[0] += 1
            elif typ == 0x0FA0:  # TextCharsAtom
                texts.append((slide[0] or None, stream[pos + 8:body_end].decode("utf-16-le", errors="replace")))
            elif typ == 0x0FA8:  # TextBytesAtom
                texts.append((slide[0] or None, stream[pos + 8:body_end].decode("latin-1", errors="replace")))
            if size == 0 and body_end == pos + 8 and typ == 0:
                pos += 8
            else:
                pos = body_end
    walk(0, len(stream), 0, 0)
    top = TopLines()
    for n, (num, t) in enumerate(texts, 1):
        for para in t.replace("\x0b", "\r").split("\r"):
            if para.strip():
                if num:
                    ctx.add(top.zone(para) if num == 1 else "body", para, slide=num)
                else:  # text outside the slide list (masters, notes): no slide number known
                    ctx.add(top.zone(para), para, block=n)
