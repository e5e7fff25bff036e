"""Text in bytes no reader understands: a program, a database, an editor's swap file,
or a text made to look like one of those by a few bytes of header. Around every place
where a literal of a rule that reads the `raw` zone stands (`密` for the ★ forms), in
UTF-8, GB18030 or UTF-16, the bytes are decoded and handed to the rules as zone `raw`.
Finding nothing there does not make the file inspected: it stays `unsupported`."""
from __future__ import annotations

import re

from .base import Ctx
from ..verdict import TextChunk

ENCODINGS = ("utf-8", "gb18030", "utf-16-le", "utf-16-be")
WINDOW = 240            # bytes each side of a literal: longer than any ★ marking in any of them
# places looked at per encoding: a film's random bytes hold a two-byte literal once in 64 KiB;
# a file with more than this is padded to hide something, and is judged as over the limits
MIN_WINDOWS, BYTES_PER_WINDOW = 4000, 2048
# what ends a text run: control characters, and bytes that did not decode
_BREAKS = re.compile("[\x00-\x08\x0b-\x1f\x7f\ufffd]+")


def _windows(data: bytes, needle: bytes, align: int, limit: int) -> list[tuple[int, int]] | None:
    """Merged [start, end) spans around each occurrence of needle, starting on the
    needle's alignment (UTF-16 code units); None past `limit` spans."""
    spans: list[tuple[int, int]] = []
    pos = data.find(needle)
    while pos >= 0:
        start = pos - min(pos, WINDOW)
        start += (pos - start) % align
        end = min(len(data), pos + len(needle) + WINDOW)
        if spans and start <= spans[-1][1] and (start - spans[-1][0]) % align == 0:
            spans[-1] = (spans[-1][0], max(spans[-1][1], end))
        elif len(spans) < limit:
            spans.append((start, end))
        else:
            return None
        pos = data.find(needle, pos + 1)
    return spans


def strings(data: bytes, ctx: Ctx, literals: tuple[str, ...]) -> None:
    """Add the text around each literal found in data, per encoding, as `raw` chunks."""
    limit = MIN_WINDOWS + len(data) // BYTES_PER_WINDOW
    for enc in ENCODINGS:
        align = 2 if enc.startswith("utf-16") else 1
        spans: list[tuple[int, int]] = []
        for lit in literals:
            found = _windows(data, lit.encode(enc), align, limit)
            if found is None:
                ctx.problem("limit_exceeded", f"{ctx.where()}: {lit!r} in more than {limit} places of bytes "
                                              f"of no known format ({enc})")
                return
            spans += found
        for start, end in sorted(set(spans)):
            text = _BREAKS.sub("\n", data[start:end].decode(enc, errors="replace"))
            if text.strip():
                loc = {"offset": start, "encoding": enc, "line": 1}
                if ctx.member:
                    loc["member"] = ctx.member
                ctx.chunks.append(TextChunk("raw", text, loc, multiline=True))
