"""The true type of a file from its bytes (python-magic), refined by looking
inside zip and OLE containers; the extension never decides."""
from __future__ import annotations

import codecs
import io
import re
import zipfile

import magic

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
XLSB = "application/vnd.ms-excel.sheet.binary.macroenabled.12"
XPS = "application/vnd.ms-xpsdocument"   # OpenXPS (.oxps) too
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
OFD = "application/ofd"
ZIP = "application/zip"
OLE = "application/x-ole-storage"
ENCRYPTED_OOXML = "application/x-encrypted-ooxml"
ODF_PREFIX = "application/vnd.oasis.opendocument."  # + text, spreadsheet, presentation...
ODF_FLAT_SUFFIX = "-flat-xml"  # fodt/fods/fodp: application/vnd.oasis.opendocument.text-flat-xml
DOC, XLS, PPT = "application/msword", "application/vnd.ms-excel", "application/vnd.ms-powerpoint"
WPS, ET, DPS = "application/wps-office.wps", "application/wps-office.et", "application/wps-office.dps"

_OLE_MIMES = {"application/x-ole-storage", "application/CDF", "application/x-cdf", DOC, XLS, PPT,
              "application/vnd.ms-office", "application/vnd.ms-outlook", "application/x-msi"}
_ZIP_MIMES = {"application/zip", "application/x-zip-compressed", "application/java-archive", DOCX, XLSX, PPTX,
              "application/vnd.ms-excel.sheet.macroEnabled.12", "application/octet-stream"}


# what libmagic is shown: its tests look near the start, and its text analysis costs
# time in proportion to what it is given (an ISO image, signed at 32 KiB, is told
# by its signature in detect())
MAGIC_BYTES = 16384


def magic_type(head: bytes) -> str:
    if not head:
        return "application/x-empty"
    return magic.from_buffer(head, mime=True)


def refine_zip(zf: zipfile.ZipFile) -> str:
    names = set(zf.namelist())
    if "word/document.xml" in names:
        return DOCX
    if "xl/workbook.xml" in names:
        return XLSX
    if "xl/workbook.bin" in names:
        return XLSB
    if "ppt/presentation.xml" in names:
        return PPTX
    if "OFD.xml" in names or "ofd.xml" in names:
        return OFD
    if any(n.lower().endswith((".fdseq", ".fpage")) for n in names):
        return XPS
    if "content.xml" in names and ("mimetype" in names or "META-INF/manifest.xml" in names):
        # an OpenDocument package names its type in the stored member "mimetype"
        declared = ""
        if "mimetype" in names:
            try:
                with zf.open("mimetype") as f:
                    declared = f.read(100).decode("ascii", "replace").strip()
            except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError, EOFError):
                pass  # the extractor reports the damage
        return declared if declared.startswith(ODF_PREFIX) else ODF_PREFIX + "text"
    return ZIP


_FLAT_ODF = re.compile(rb"<office:document\b[^>]*?office:mimetype=\"(application/vnd\.oasis\.opendocument\.[a-z-]+)\"")


def refine_xml(head: bytes) -> str | None:
    """A flat OpenDocument file (one XML document), which libmagic calls XML."""
    m = _FLAT_ODF.search(head[:4096])
    if m is None:
        return None
    return m.group(1).decode() + ODF_FLAT_SUFFIX


def refine_ole(streams: set[str]) -> str:
    """streams: lower-cased top-level stream and storage names."""
    wps = any("wps" in s or s.startswith("kso") for s in streams)
    if "encryptioninfo" in streams or "encryptedpackage" in streams:
        return ENCRYPTED_OOXML
    if "worddocument" in streams:
        return WPS if wps else DOC
    if "workbook" in streams or "book" in streams:
        return ET if wps else XLS
    if "powerpoint document" in streams:
        return DPS if wps else PPT
    return OLE


XHTML, EML = "application/xhtml+xml", "message/rfc822"
_HEADER_LINE = re.compile(rb"[A-Za-z][A-Za-z0-9-]*:[ \t]")


def refine_text(mime: str, head: bytes) -> str:
    """XHTML, which libmagic calls XML, and a MIME web archive (.mht) without a
    From line, which it calls plain text."""
    low = head[:4096].lower()
    if mime in ("text/xml", "application/xml") and b"<html" in low and b"opendocument" not in low:
        return XHTML
    if mime == "text/plain" and _HEADER_LINE.match(head) and b"mime-version:" in low and b"content-type:" in low:
        return EML
    return mime


# Types certain from their first bytes. libmagic's soft tests (regular expressions
# over the head) cost about 2 ms on a text file and 0.1-0.4 ms on the others, more
# than reading most office files; these skip it.
_SIGNATURES = ((b"%PDF-", "application/pdf"), (b"\x1f\x8b", "application/gzip"),
               (b"\xfd7zXZ\x00", "application/x-xz"), (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"))
# Excel 2, 3 and 4 saved a sheet or workbook as its bare record stream: a BOF record (0x0009,
# 0x0209, 0x0409) of 4 or 6 bytes, version, then the kind of sheet (worksheet, chart, macro
# sheet, BIFF4 workbook). libmagic knows only Excel 4's worksheets.
_BARE_BIFF = re.compile(rb"[\x09][\x00\x02\x04][\x04\x06]\x00..(?:[\x10\x20\x40]\x00|\x00\x01)", re.DOTALL)
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f\x7f]")
_FIRST_WORD = re.compile(r"\s*[\w\u3000-\u303f\uff00-\uffef\u2605\u2606]", re.UNICODE)


def _decoded_head(head: bytes) -> str | None:
    if head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        encodings: tuple[str, ...] = ("utf-16",)
    else:
        encodings = ("utf-8-sig", "gb18030")
    for enc in encodings:
        try:  # incremental: the head may end inside a multi-byte character
            return codecs.getincrementaldecoder(enc)().decode(head, final=False)
        except UnicodeDecodeError:
            continue
    return None


def plain_text(head: bytes) -> bool:
    """Whether the head is prose that libmagic could only call text/plain: UTF-8,
    GB18030 or UTF-16 with its byte-order mark, without control characters, starting with a word (not markup, a script's
    #!, a mail header, JSON or a PostScript %!) and without a "<" or a comma, where
    libmagic's HTML, XML and CSV tests would have something to find."""
    text = _decoded_head(head)
    if not text or "<" in text or "," in text or _CONTROLS.search(text) or not _FIRST_WORD.match(text):
        return False
    first = text.lstrip().split("\n", 1)[0]
    return not _HEADER_LINE.match(first.encode()) and not first.startswith(("From ", "BEGIN:"))


def _signature(head: bytes) -> str | None:
    for sig, mime in _SIGNATURES:
        if head.startswith(sig):
            return mime
    if head[:3] == b"BZh" and head[3:4].isdigit():
        return "application/x-bzip2"
    if _BARE_BIFF.match(head):
        return XLS
    return None


def detect(data: bytes) -> str:
    """MIME type of a file's bytes."""
    head = data[:MAGIC_BYTES]
    known = _signature(head)
    if known:
        return known
    if data[:4] == b"PK\x03\x04":
        try:
            return refine_zip(zipfile.ZipFile(io.BytesIO(data)))
        except (zipfile.BadZipFile, ValueError, OSError, NotImplementedError):   # e.g. "zip file version 6.4"
            return magic_type(head)
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        refined = _ole(data)
        return refined if refined is not None else magic_type(head)
    if plain_text(head):
        return refine_text("text/plain", data)
    if data[0x8001:0x8006] == b"CD001":   # ISO 9660: signed at 32 KiB, past what libmagic is shown
        return "application/x-iso9660-image"
    mime = magic_type(head)
    if mime == "application/pdf" and _quotes_pdf(head):
        return refine_text("text/plain", data)
    if mime in _ZIP_MIMES and data[:2] == b"PK":
        try:
            return refine_zip(zipfile.ZipFile(io.BytesIO(data)))
        except (zipfile.BadZipFile, ValueError, OSError, NotImplementedError):
            return mime
    if mime in ("text/xml", "application/xml") and b"opendocument" in data[:4096]:
        return refine_xml(data) or mime
    if mime in ("text/xml", "application/xml", "text/plain"):
        return refine_text(mime, data)
    if mime in _OLE_MIMES:
        refined = _ole(data)
        return refined if refined is not None else mime
    return mime


# How far in a reader looks for what a prefix hides: PDF readers find the header within the
# first KiB (Acrobat's rule, pdfium's too); the stub of a self-extracting archive (7-Zip's,
# WinRAR's) is a few hundred KiB
PDF_HEADER_WINDOW = 1024
SFX_WINDOW = 1 << 20
_ARCHIVE_SIGNATURES = ((b"Rar!\x1a\x07", "application/vnd.rar"), (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"))


def carried(data: bytes, programs: bool = True) -> list[tuple[str, int]]:
    """What a file of no readable type may carry behind a prefix that its readers skip,
    as (type, where its reader starts), nearest first: a PDF after leading junk, a
    self-extracting archive (a program with a zip, RAR or 7z behind it), a zip after
    anything. Only a guess (a program may hold such a signature as a constant):
    extract.py keeps a candidate only where its reader makes sense of it. `programs`:
    whether to look for the archive of a self-extracting program (not behind text)."""
    found: list[tuple[int, str, int]] = []   # (where it begins, type, where its reader starts)
    at = data.find(b"%PDF-", 1, PDF_HEADER_WINDOW)
    if at > 0:
        found.append((at, "application/pdf", at))
    for sig, mime in _ARCHIVE_SIGNATURES if programs else ():
        at = data.find(sig, 1, SFX_WINDOW)
        if at > 0:
            found.append((at, mime, at))
    # a zip is read from its end (the central directory), whatever comes before it, so
    # its reader is given the whole file
    if data.rfind(b"PK\x05\x06", max(0, len(data) - 65557)) >= 0 and (at := data.find(b"PK\x03\x04", 1)) > 0:
        try:
            found.append((at, refine_zip(zipfile.ZipFile(io.BytesIO(data))), 0))
        except (zipfile.BadZipFile, ValueError, OSError, NotImplementedError):
            pass
    return [(mime, start) for _at, mime, start in sorted(found)]


# a PDF's own syntax, which nothing else puts in its first KiB: an object, the
# cross-reference table or stream, the trailer
_PDF_SYNTAX = re.compile(rb"\d+\s+\d+\s+obj\b|\bxref\s+\d+\s+\d+\s|\btrailer\s*<<|startxref\s+\d"
                         rb"|/Type\s*/(?:Catalog|Pages|Page|XRef|ObjStm)\b")


def _quotes_pdf(head: bytes) -> bool:
    """Text that only mentions a PDF header (libmagic calls anything with `%PDF-` in its
    first KiB a PDF): no header at the start, none of a PDF's own syntax, and text."""
    if head.startswith(b"%PDF-") or len(_PDF_SYNTAX.findall(head, 0, PDF_HEADER_WINDOW)) >= 2:
        return False
    text = _decoded_head(head)
    return text is not None and not _CONTROLS.search(text)


def damaged_pdf(data: bytes) -> bool:
    """Whether bytes no PDF reader opened are a PDF all the same (its header, or its
    objects, in the first KiB): a damaged PDF, not a file of an unknown kind."""
    head = data[:PDF_HEADER_WINDOW]
    return b"%PDF-" in head or len(_PDF_SYNTAX.findall(head)) >= 2


def _ole(data: bytes) -> str | None:
    import olefile
    try:
        with olefile.OleFileIO(io.BytesIO(data)) as ole:
            return refine_ole({e[0].lower() for e in ole.listdir(streams=True, storages=True)})
    except Exception:  # olefile raises many kinds on damaged files
        return None
