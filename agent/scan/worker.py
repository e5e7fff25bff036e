"""The scanner's worker process: is handed an open file, extracts its text, runs the
rules and sends back only the Verdict, as JSON (text never leaves this process).
Runs under an address-space limit so a hostile document cannot exhaust memory, and
gives up its privileges before it reads any document (sandbox.py)."""
from __future__ import annotations

import hashlib
import json
import os
import resource
from multiprocessing.connection import Connection
from multiprocessing.reduction import recv_handle
from typing import Any

from .extract import Extraction, extract_data, ocr_pictures, read_capped, too_large
from .limits import Limits
from .opening import fail, open_for_scan
from .sandbox import Identity, confine
from .verdict import Verdict

READ = 1024 * 1024


def _vm_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def limit_memory(memory_mb: int) -> None:
    """Cap the address space at what the interpreter already uses plus memory_mb."""
    cap = _vm_bytes() + memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))


def scan_one(path: str, limits: Limits, ruleset: Any, sha256: str | None = None) -> Verdict:
    """The verdict on the file at path, opened here (in-process use; the pool's workers
    are handed descriptors: scan_fd)."""
    opened = open_for_scan(path)
    if isinstance(opened, Verdict):
        return opened
    return scan_fd(opened, path, limits, ruleset, sha256)


def scan_fd(fd: int, path: str, limits: Limits, ruleset: Any, sha256: str | None = None) -> Verdict:
    """The verdict on the open file fd (closed here), reported under path. sha256: the
    content's hash when the caller already has it (the file is then not hashed again);
    otherwise the worker hashes what it reads."""
    v = Verdict(path=path)
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
            return fail(v, "unreadable", f"read failed: {exc.strerror}")
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


def _load_libraries() -> None:
    """Load the parsers' libraries before the memory cap, so the cap measures what a
    document costs, not what the interpreter needs once. Done before the settings
    arrive: the parent reads its configuration and rules meanwhile (spawn.py)."""
    from . import detect
    from .extractors import archive, html, image, mail, odf, ofd, ole, ooxml, pdf, raw, rtf, svg, text, xlsb, xps  # noqa: F401
    import PIL.Image  # noqa: F401
    try:
        import libarchive  # noqa: F401  (its shared library, mapped before the cap)
    except (ImportError, OSError):
        pass   # RAR and the like are then unreadable, and say why
    import pypdfium2  # noqa: F401
    import pypdf  # noqa: F401
    detect.magic_type(b"warm up")


def _warm_up(ruleset: Any) -> None:
    """The rules' own first use (and the fingerprint database), also before the cap."""
    if ruleset is not None:
        from .verdict import TextChunk
        ruleset.evaluate([TextChunk("body", "warm up", {})])


def _answer(conn: Connection, message: dict[str, Any]) -> None:
    # ASCII JSON: a name that is not valid UTF-8 (a surrogate escape) still goes through
    conn.send_bytes(json.dumps(message).encode())


def _give_up_privileges(identity: Identity | None) -> list[str]:
    """Become the unprivileged scanning user, confined; what the kernel refused of it."""
    try:
        return confine(identity)
    except OSError as exc:
        name = identity.name if identity else "?"
        return [f"it keeps its privileges: cannot become {name!r} ({exc.strerror or exc})"]


def serve(conn: Connection) -> None:
    """Worker main loop: its libraries, then its settings, then one (path, sha256 or
    None) in with the file's descriptor, one Verdict out, until the pipe closes."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when workers stop
    _load_libraries()
    try:
        limits, ruleset, memory_mb, identity = conn.recv()
    except (EOFError, OSError):
        return
    _warm_up(ruleset)   # as root: the rules and the fingerprint database are read now
    try:
        limit_memory(memory_mb)
    except (OSError, ValueError):
        pass
    refused = _give_up_privileges(identity)
    # the parent starts a file's clock only once the worker is up. Everything sent back
    # is JSON, never a pickle: the agent must not run what a subverted worker sends
    _answer(conn, {"ready": True, "uid": os.getuid(), "refused": refused})
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        path, sha256 = job
        try:
            fd = recv_handle(conn)
        except (EOFError, OSError):
            return
        retire = False  # after running out of memory this process is not to be trusted again
        try:
            verdict = scan_fd(fd, path, limits, ruleset, sha256)
        except MemoryError:
            retire = True
            verdict = fail(Verdict(path=path), "limit_exceeded", f"needed more than memory_mb={memory_mb}")
        except RecursionError:
            verdict = fail(Verdict(path=path), "limit_exceeded", "structure nested too deeply")
        except Exception as exc:  # never let one file kill the worker
            verdict = fail(Verdict(path=path), "corrupt", f"{type(exc).__name__}: {exc}"[:300])
        try:
            _answer(conn, {"verdict": verdict.to_json(), "retire": retire})
        except MemoryError:
            _answer(conn, {"verdict": fail(Verdict(path=path), "limit_exceeded", "verdict too large").to_json(),
                           "retire": True})
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
