"""The scanner's worker process: reads a file, extracts its text, runs the
rules and sends back only the Verdict (text never leaves this process). Runs
under an address-space limit so a hostile document cannot exhaust memory."""
from __future__ import annotations

import hashlib
import os
import re
import resource
import stat
from multiprocessing.connection import Connection
from typing import Any

from .extract import Extraction, extract_data, ocr_pictures, read_capped, too_large
from .limits import Limits
from .verdict import Verdict

READ = 1024 * 1024


def _vm_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def limit_memory(memory_mb: int) -> None:
    """Cap the address space at what the interpreter already uses plus memory_mb."""
    cap = _vm_bytes() + memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))


_FD_LINK = re.compile(r"/proc/(\d+|self)/fd/\d+")


def scan_one(path: str, limits: Limits, ruleset: Any, sha256: str | None = None) -> Verdict:
    """sha256: the content's hash when the caller already has it (the file is then
    not hashed again); otherwise the worker hashes what it reads."""
    v = Verdict(path=path)
    # a descriptor's magic link (a file deleted or renamed since it was written) is followed;
    # any other symbolic link is not
    follow = bool(_FD_LINK.fullmatch(path))
    nofollow = 0 if follow else os.O_NOFOLLOW
    try:
        st = os.stat(path) if follow else os.lstat(path)
    except FileNotFoundError:
        return _fail(v, "vanished", "the file no longer exists")
    except OSError as exc:
        return _fail(v, "unreadable", f"cannot stat: {exc.strerror}")
    v.size = st.st_size
    if stat.S_ISLNK(st.st_mode):
        return _fail(v, "unsupported", "a symbolic link (not followed)", "inode/symlink")
    if not stat.S_ISREG(st.st_mode):
        return _fail(v, "unsupported", "not a regular file (device, FIFO or socket)", "inode/special")
    try:
        fd = os.open(path, os.O_RDONLY | nofollow | os.O_NONBLOCK)
    except FileNotFoundError:
        return _fail(v, "vanished", "the file disappeared before it was read")
    except OSError as exc:
        return _fail(v, "unreadable", f"cannot open: {exc.strerror}")
    with os.fdopen(fd, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        v.size = size
        if size > limits.max_file_bytes:
            head = f.read(65536)
            v.sha256 = sha256 if sha256 is not None else _hash_on(head, f)
            return _apply(v, too_large(head, size, limits), [], ruleset)
        try:
            data = read_capped(f, size, limits.max_file_bytes)
        except OSError as exc:  # EIO on a yanked medium
            return _fail(v, "unreadable", f"read failed: {exc.strerror}")
    v.sha256 = sha256 if sha256 is not None else hashlib.sha256(data).hexdigest()
    v.size = len(data)
    ex = extract_data(data, limits, ruleset.raw_literals if ruleset is not None else ())
    del data
    evidence = ruleset.evaluate(ex.chunks, v.sha256) if ruleset is not None else []
    if ruleset is not None and ex.pictures and not any(e.zone != "metadata" for e in evidence):
        evidence += ruleset.evaluate(ocr_pictures(ex, limits))  # text unmarked: what do its pictures say?
    ex.pictures = []  # their loaders hold the document's bytes
    return _apply(v, ex, evidence, ruleset)


def _hash_on(head: bytes, f: Any) -> str:
    """sha256 of head and the rest of f, read a block at a time."""
    h = hashlib.sha256(head)
    while block := f.read(READ):
        h.update(block)
    return h.hexdigest()


def _apply(v: Verdict, ex: Extraction, evidence: list, ruleset: Any) -> Verdict:
    v.type, v.inspectable, v.reason, v.detail = ex.type, ex.inspectable, ex.reason, ex.detail
    v.evidence = evidence
    if ruleset is not None:
        v.level = ruleset.level(evidence)
    return v


def _fail(v: Verdict, reason: str, detail: str, mime: str | None = None) -> Verdict:
    v.inspectable, v.reason, v.detail = False, reason, detail
    if mime:
        v.type = mime
    return v


def _warm_up(ruleset: Any) -> None:
    """Load libraries and databases before the memory cap, so the cap measures
    what a document costs, not what the interpreter needs once."""
    from . import detect
    from .extractors import archive, html, image, mail, odf, ofd, ole, ooxml, pdf, raw, rtf, text  # noqa: F401
    import PIL.Image  # noqa: F401
    try:
        import libarchive  # noqa: F401  (its shared library, mapped before the cap)
    except (ImportError, OSError):
        pass   # RAR and the like are then unreadable, and say why
    import pypdfium2  # noqa: F401
    import pypdf  # noqa: F401
    detect.magic_type(b"warm up")
    if ruleset is not None:
        from .verdict import TextChunk
        ruleset.evaluate([TextChunk("body", "warm up", {})])


def serve(conn: Connection) -> None:
    """Worker main loop: settings first, then one (path, sha256 or None) in, one
    Verdict out, until the pipe closes."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when workers stop
    try:
        limits, ruleset, memory_mb = conn.recv()
    except (EOFError, OSError):
        return
    _warm_up(ruleset)
    try:
        limit_memory(memory_mb)
    except (OSError, ValueError):
        pass
    conn.send("ready")  # the parent starts a file's clock only once the worker is up
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        path, sha256 = job
        retire = False  # after running out of memory this process is not to be trusted again
        try:
            verdict = scan_one(path, limits, ruleset, sha256)
        except MemoryError:
            retire = True
            verdict = _fail(Verdict(path=path), "limit_exceeded", f"needed more than memory_mb={memory_mb}")
        except RecursionError:
            verdict = _fail(Verdict(path=path), "limit_exceeded", "structure nested too deeply")
        except Exception as exc:  # never let one file kill the worker
            verdict = _fail(Verdict(path=path), "corrupt", f"{type(exc).__name__}: {exc}"[:300])
        try:
            conn.send((verdict, retire))
        except MemoryError:
            conn.send((_fail(Verdict(path=path), "limit_exceeded", "verdict too large"), True))
            retire = True
        if retire:
            return


if __name__ == "__main__":
    import sys
    serve(Connection(int(sys.argv[1])))
    # nothing is left to flush or finalise: skipping the interpreter's teardown (tens
    # of milliseconds with the extractors loaded) is what makes a stop quick
    sys.stderr.flush()
    os._exit(0)
