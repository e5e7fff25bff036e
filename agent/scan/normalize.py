"""Text normalisation before rules run: one spelling for what Chinese office
documents write many ways (full-width ＊：（）, ideographic spaces, NBSP)."""
from __future__ import annotations

import re
import unicodedata

_SPACES = re.compile(r"[\s\u3000\u00a0\u2000-\u200b\ufeff]+")
# NFKC leaves these alone, but documents use them for the same marks
_EXTRA = str.maketrans({"﹡": "*", "✱": "*", "✲": "*", "⋆": "*", "【": "[", "】": "]", "〔": "[", "〕": "]",
                        "〖": "[", "〗": "]", "《": "<", "》": ">", "∶": ":"})


def normalize(text: str) -> str:
    """NFKC (full-width → half-width, ideographic space → space), unify stars and
    brackets, collapse runs of white space to one space, strip the ends."""
    text = unicodedata.normalize("NFKC", text).translate(_EXTRA)
    return _SPACES.sub(" ", text).strip()


_CJK = r"\u3400-\u9fff\uf900-\ufaff"
_CJK_GAP = re.compile(rf"(?<=[{_CJK}]) (?=[{_CJK}])")


def squeeze_cjk(text: str) -> str:
    """Drop single spaces between two CJK characters ("机 密" → "机密"), which
    typesetting and PDF text layers insert; spaces next to Latin text stay."""
    return _CJK_GAP.sub("", text)


_FP_DROP = re.compile(rf"[^0-9a-z{_CJK}]+")


def for_fingerprint(text: str) -> str:
    """Letters, digits and CJK only, lower case: edits of layout and punctuation
    must not change a document's fingerprint."""
    return _FP_DROP.sub("", unicodedata.normalize("NFKC", text).lower())
