"""A sysfs-shaped rfkill tree of real files (rfkillN/type, name, soft, hard) for radio tests."""
from __future__ import annotations

from pathlib import Path


def add_radio(root: Path, n: int, type_: str, name: str, soft: str = "0", hard: str = "0") -> Path:
    d = root / f"rfkill{n}"
    d.mkdir(parents=True)
    for f, v in (("type", type_), ("name", name), ("soft", soft), ("hard", hard)):
        (d / f).write_text(v + "\n")
    return d
