"""Bounds on what one file may cost to inspect ([scan] in agent.toml)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int = 200 * 1024 * 1024      # a file larger than this is not read: too_large
    max_archive_bytes: int = 1024 * 1024 * 1024  # total bytes unpacked from one file's archives/parts
    max_ratio: float = 200.0                     # unpacked / packed, per member (above 1 MiB)
    max_depth: int = 5                           # archives inside archives
    max_members: int = 10000                     # members of all archives of one file
    ocr: bool = True                             # read images and pages without a text layer with Tesseract
    ocr_max_pixels: int = 50_000_000             # a larger image is not decoded: limit_exceeded
    ocr_max_pages: int = 20                      # images and PDF pages OCR'd per file
    ocr_timeout_s: float = 20.0                  # OCR seconds per file (within the worker's timeout_s)
    ocr_languages: str = "chi_sim+eng"
    ocr_embedded: int = 5                        # pictures of a document OCR'd when its text has no marking (0: none)

    @classmethod
    def from_config(cls, scan: Any) -> "Limits":
        return cls(scan.max_file_bytes, scan.max_archive_bytes, scan.max_ratio, scan.max_depth, scan.max_members,
                   # OCR stops before the worker's own time runs out, so the verdict says why
                   scan.ocr, scan.ocr_max_pixels, scan.ocr_max_pages, min(scan.ocr_timeout_s, 0.8 * scan.timeout_s),
                   scan.ocr_languages,
                   scan.ocr_embedded)
