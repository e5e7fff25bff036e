"""Text and PostScript to PDF with CUPS's own filters (cupsfilter → texttopdf, gstopdf),
so such documents can be scanned through their text layer and stamped."""
from __future__ import annotations

import shutil
import subprocess

PDF = "application/pdf"
POSTSCRIPT = "application/postscript"
TEXT = "text/plain"


def sniff(head: bytes) -> str:
    """The type of a job's data from its first bytes: PDF (bare or PJL-wrapped), PostScript,
    plain text, or "" for anything else (PCL, raster, …)."""
    if b"%PDF-" in head[:4096]:
        return PDF
    if head.startswith(b"%!") or head.startswith(b"\x04%!"):
        return POSTSCRIPT
    if head and b"\x00" not in head[:4096] and (b"\x1b" not in head[:4096]):
        try:
            head[:4096].decode("utf-8")
            return TEXT
        except UnicodeDecodeError:
            try:
                head[:4096].decode("gb18030")
                return TEXT
            except UnicodeDecodeError:
                return ""
    return ""


def available() -> bool:
    return shutil.which("cupsfilter") is not None


def to_pdf(path: str, mime: str, timeout_s: float = 60.0) -> bytes:
    """The document at path as PDF; RuntimeError when CUPS's filters cannot make one."""
    if mime == PDF:
        with open(path, "rb") as f:
            return f.read()
    if mime not in (TEXT, POSTSCRIPT) or not available():
        raise RuntimeError(f"cannot turn {mime or 'this data'} into PDF"
                           + ("" if available() else " (cupsfilter not installed)"))
    try:
        done = subprocess.run(["cupsfilter", "-i", mime, "-m", PDF, path], capture_output=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeError(f"cupsfilter: {exc}") from None
    if done.returncode != 0 or not done.stdout.startswith(b"%PDF-"):
        raise RuntimeError(f"cupsfilter failed (exit {done.returncode})")
    return done.stdout
