"""RTF: control words stripped with striprtf; \\'xx bytes decoded in the code
page the document declares (\\ansicpg936 = GBK), \\uN escapes as Unicode."""
from __future__ import annotations

import re

from striprtf.striprtf import rtf_to_text

from .base import Ctx, Incomplete, TopLines

_CPG = re.compile(rb"\\ansicpg(\d+)")


def rtf(data: bytes, ctx: Ctx) -> None:
    m = _CPG.search(data[:4096])
    encoding = f"cp{int(m.group(1))}" if m else "cp1252"
    if encoding == "cp936":
        encoding = "gbk"
    try:
        "".encode(encoding)
    except LookupError:
        encoding = "cp1252"
    try:
        content = rtf_to_text(data.decode("latin-1"), encoding=encoding, errors="replace")
    except Exception as exc:
        raise Incomplete("corrupt", f"{ctx.where()}: RTF not readable: {exc}") from None
    top = TopLines()
    for n, line in enumerate(content.splitlines(), 1):
        if line.strip():
            ctx.add(top.zone(line), line, line=n)
