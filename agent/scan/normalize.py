"""The scanner's text normalisation; it lives in baomi.common.normalize, where the
collector validates rule files and fingerprints documents with the same code."""
from __future__ import annotations

from baomi.common.normalize import (for_fingerprint, leading_part, normalize, regions, squeeze_cjk,  # noqa: F401
                                    strip_markup)

__all__ = ["for_fingerprint", "leading_part", "normalize", "regions", "squeeze_cjk", "strip_markup"]
