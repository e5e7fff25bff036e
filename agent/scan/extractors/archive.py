"""Archives: zip (GBK member names from Chinese Windows), tar, gzip, bzip2, xz
and 7z, and through Debian's libarchive RAR, CAB, ISO 9660, cpio, XAR, ar/deb,
rpm, LHA and zstd/lz4/lzip/lzma/compress streams; nested, each member extracted
as a file of its own type. Bombs are
refused by ratio, total size, depth and member count; an encrypted member is
noted and the rest still read."""
from __future__ import annotations

import bz2
import functools
import io
import lzma
import tarfile
import zipfile
import zlib

from .base import Ctx, Incomplete
from .xmlutil import read_member

CHUNK = 1024 * 1024


def member_name(info: zipfile.ZipInfo) -> str:
    """Names without the UTF-8 flag are in the OEM code page of the machine that
    made the zip: GBK on Chinese Windows. zipfile decoded them as cp437."""
    if info.flag_bits & 0x800:
        return info.filename
    raw = info.filename.encode("cp437", errors="replace")
    for enc in ("utf-8", "gb18030"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    return info.filename


def zip_(data: bytes, ctx: Ctx) -> None:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError) as exc:
        raise Incomplete("corrupt", f"{ctx.where()}: damaged zip: {exc}") from None
    except NotImplementedError as exc:   # a zip version this reader does not know
        raise Incomplete("unreadable", f"{ctx.where()}: zip not readable here: {exc}") from None
    for info in zf.infolist():
        if info.is_dir():
            continue
        name = member_name(info)
        try:
            body = read_member(zf, info, ctx)
        except Incomplete as exc:
            if exc.reason == "limit_exceeded" and "max_archive_bytes" in exc.detail:
                raise
            ctx.problem(exc.reason, exc.detail)
            continue
        except (zipfile.BadZipFile, EOFError, OSError, ValueError, zlib.error) as exc:
            ctx.problem("corrupt", f"{ctx.where()}:{name}: {exc}")
            continue
        except NotImplementedError as exc:
            # a compression method this reader lacks (Deflate64, zstd, PPMd): the member
            # may hold anything, so it fails closed, unlike a type that carries no text
            ctx.problem("unreadable", f"{ctx.where()}:{name}: {exc}")
            continue
        ctx.descend(body, name)


def tar(data: bytes, ctx: Ctx) -> None:
    try:
        tf = tarfile.open(fileobj=io.BytesIO(data), mode="r:*")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise Incomplete("corrupt", f"{ctx.where()}: damaged tar: {exc}") from None
    try:
        for info in tf:
            if not info.isfile():
                continue
            if info.issparse() and not any(size for _offset, size in info.sparse or ()):
                continue   # a sparse member that is all hole: nothing was written in it (and 512 MiB of zeros would be)
            ctx.budget.take(info.size, f"{ctx.where()}:{info.name}")
            f = tf.extractfile(info)
            if f is None:
                continue
            ctx.descend(f.read(info.size), info.name)
    except (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError) as exc:
        ctx.problem("corrupt", f"{ctx.where()}: tar stream damaged: {exc}")


def _decompressor(data: bytes):
    if data[:2] == b"\x1f\x8b":
        return zlib.decompressobj(16 + zlib.MAX_WBITS), "gzip"
    if data[:3] == b"BZh":
        return bz2.BZ2Decompressor(), "bzip2"
    return lzma.LZMADecompressor(), "xz"


def compressed(data: bytes, ctx: Ctx) -> None:
    """A single compressed stream: inflate under the limits, then extract what is inside."""
    dec, kind = _decompressor(data)
    lim = ctx.limits
    room = lim.max_archive_bytes - ctx.budget.unpacked
    out = bytearray()
    try:
        if kind == "gzip":
            buf = dec.decompress(data, CHUNK)
            out += buf
            while dec.unconsumed_tail and len(out) <= room:
                out += dec.decompress(dec.unconsumed_tail, CHUNK)
                if len(out) > max(CHUNK, lim.max_ratio * len(data)):
                    break
        else:
            out += dec.decompress(data, max_length=CHUNK)
            while not dec.eof and len(out) <= room and not (len(out) > max(CHUNK, lim.max_ratio * len(data))):
                more = dec.decompress(b"", max_length=CHUNK)
                if not more:
                    break
                out += more
    except (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError) as exc:
        ctx.problem("corrupt", f"{ctx.where()}: {kind} stream damaged: {exc}")
    if len(out) > max(CHUNK, lim.max_ratio * len(data)):
        raise Incomplete("limit_exceeded", f"{ctx.where()}: {kind} expands more than max_ratio {lim.max_ratio:g}")
    if len(out) > room:
        raise Incomplete("limit_exceeded", f"{ctx.where()}: {kind} content passes max_archive_bytes")
    ctx.budget.take(len(out), ctx.where())
    inner = bytes(out)
    if len(inner) > 262 and inner[257:262] == b"ustar":
        tar(inner, ctx)  # .tar.gz and friends
    else:
        ctx.descend(inner, f"({kind})")


def sevenzip(data: bytes, ctx: Ctx) -> None:
    import py7zr
    try:
        archive = py7zr.SevenZipFile(io.BytesIO(data))
    except py7zr.exceptions.PasswordRequired:
        raise Incomplete("encrypted", f"{ctx.where()}: 7z archive is encrypted") from None
    except Exception as exc:
        raise Incomplete("corrupt", f"{ctx.where()}: damaged 7z: {exc}") from None
    with archive:
        if archive.needs_password():
            raise Incomplete("encrypted", f"{ctx.where()}: 7z archive is encrypted")
        infos = [i for i in archive.list() if not i.is_directory]
        total = sum(i.uncompressed or 0 for i in infos)
        packed = max(1, len(data))
        if total > CHUNK and total > ctx.limits.max_ratio * packed:
            raise Incomplete("limit_exceeded", f"{ctx.where()}: 7z expands {total // packed}x")
        room = ctx.limits.max_archive_bytes - ctx.budget.unpacked
        ctx.budget.take(total, ctx.where())
        from py7zr.io import BytesIOFactory
        factory = BytesIOFactory(room)  # also caps what a lying header could unpack
        try:
            archive.extract(factory=factory)
        except Exception as exc:
            raise Incomplete("corrupt", f"{ctx.where()}: 7z content damaged: {exc}") from None
        for name, bio in factory.products.items():
            bio.seek(0)
            ctx.descend(bio.read(), name)


# read through libarchive (libarchive-c over Debian's libarchive13): containers, and
# compressed single streams (whose content may itself be a tar)
LIBARCHIVE_CONTAINERS = ("application/x-rar", "application/vnd.rar", "application/x-rar-compressed",
                         "application/vnd.ms-cab-compressed", "application/x-iso9660-image", "application/x-cpio",
                         "application/x-xar", "application/x-archive", "application/vnd.debian.binary-package",
                         "application/x-rpm", "application/x-lha", "application/x-lharc", "application/x-lzh-compressed")
LIBARCHIVE_STREAMS = ("application/zstd", "application/x-zstd", "application/x-lz4", "application/x-lzip",
                      "application/x-compress", "application/x-lzma")


def libarchive_(data: bytes, ctx: Ctx) -> None:
    """A RAR, CAB, ISO or other archive, or a zstd/lz4/lzip/lzma/compress stream."""
    try:
        import libarchive
    except (ImportError, OSError) as exc:   # libarchive13 not installed: fail closed, say why
        raise Incomplete("unreadable", f"{ctx.where()}: libarchive is not available ({exc})") from None
    # a RAR is read as RAR: libarchive's bidding takes a RAR that ends in a stored zip-based
    # member (a docx kept with -m0) for that zip, and would never see the rest
    fmt = "rar5" if data.startswith(b"Rar!\x1a\x07\x01\x00") else "rar" if data.startswith(b"Rar!\x1a\x07\x00") else "all"
    try:
        try:
            _entries(libarchive.memory_reader(data, format_name=fmt), data, ctx)
        except libarchive.ArchiveError as exc:
            if "nrecognized archive format" not in _message(exc):
                raise
            _entries(libarchive.memory_reader(data, format_name="raw"), data, ctx)   # one compressed stream
    except libarchive.ArchiveError as exc:
        msg = _message(exc)
        if "ncrypt" in msg or "assphrase" in msg or "assword" in msg:
            raise Incomplete("encrypted", f"{ctx.where()}: password-protected archive: {msg}") from None
        raise Incomplete("corrupt", f"{ctx.where()}: damaged archive: {msg}") from None


def _entries(reader, data: bytes, ctx: Ctx) -> None:
    lim = ctx.limits
    with reader as archive:
        for entry in archive:
            if not entry.isfile:
                continue
            name = entry.pathname
            if isinstance(name, bytes):   # not UTF-8: an OEM code page, GBK on Chinese Windows
                name = name.decode("gb18030", errors="replace")
            name = name or "(data)"
            if _encrypted(entry):   # ciphertext would pass for a member of no known type
                ctx.problem("encrypted", f"{ctx.where()}:{name}: password-protected member")
                continue
            room = lim.max_archive_bytes - ctx.budget.unpacked
            body = bytearray()
            for block in entry.get_blocks(CHUNK):
                body += block
                if len(body) > room:
                    raise Incomplete("limit_exceeded", f"{ctx.where()}:{name}: content passes max_archive_bytes")
                if len(body) > max(CHUNK, lim.max_ratio * len(data)):
                    raise Incomplete("limit_exceeded", f"{ctx.where()}:{name}: expands more than max_ratio "
                                                       f"{lim.max_ratio:g}")
            ctx.budget.take(len(body), f"{ctx.where()}:{name}")
            ctx.descend(bytes(body), name)


def _message(exc: Exception) -> str:
    """libarchive-c's message: text, undecoded bytes or None."""
    msg = getattr(exc, "msg", None)
    return msg.decode("utf-8", errors="replace") if isinstance(msg, bytes) else str(msg or "")


@functools.cache
def _is_encrypted_fn():  # type: ignore[no-untyped-def]
    """archive_entry_is_encrypted (libarchive >= 3.2), which libarchive-c does not wrap."""
    import ctypes
    from libarchive import ffi
    fn = ffi.libarchive.archive_entry_is_encrypted
    fn.argtypes, fn.restype = [ffi.c_archive_entry_p], ctypes.c_int
    return fn


def _encrypted(entry) -> bool:  # type: ignore[no-untyped-def]
    return bool(_is_encrypted_fn()(entry._entry_p))
