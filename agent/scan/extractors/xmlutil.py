"""Safe XML for hostile documents: defusedxml refuses entity expansion and
external references; zip members are read with size and ratio caps."""
from __future__ import annotations

import zipfile
from typing import Any
from xml.etree.ElementTree import Element

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException

from ..extract import Ctx, Incomplete

SMALL = 1024 * 1024  # below this a high compression ratio is normal (repetitive XML)


def local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, ctx: Ctx) -> bytes:
    """A member's bytes, refusing bombs before inflating them."""
    lim = ctx.limits
    name = f"{ctx.where()}:{info.filename}" if ctx.member else info.filename
    if info.flag_bits & 0x1:
        raise Incomplete("encrypted", f"{name} is encrypted")
    if info.file_size > SMALL and info.file_size > lim.max_ratio * max(1, info.compress_size):
        raise Incomplete("limit_exceeded", f"{name}: expands {info.file_size // max(1, info.compress_size)}x "
                                           f"(max_ratio {lim.max_ratio:g})")
    room = lim.max_archive_bytes - ctx.budget.unpacked
    if info.file_size > room:
        raise Incomplete("limit_exceeded", f"{name}: {info.file_size} bytes would pass max_archive_bytes")
    with zf.open(info) as f:
        data = f.read(min(room, max(info.file_size, 0)) + 1)  # never trust the header alone
    if len(data) > info.file_size or len(data) > room:
        raise Incomplete("limit_exceeded", f"{name}: larger than its header says")
    ctx.budget.take(len(data), name)
    return data


def parse(data: bytes, what: str) -> Element:
    try:
        return SafeET.fromstring(data)
    except DefusedXmlException as exc:
        raise Incomplete("corrupt", f"{what}: refused XML ({type(exc).__name__})") from None
    except SafeET.ParseError as exc:
        raise Incomplete("corrupt", f"{what}: XML error: {exc}") from None
