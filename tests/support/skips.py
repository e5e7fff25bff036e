"""Skip helpers: a test that cannot run says what is missing, never passes silently."""
from __future__ import annotations

import os
import shutil

import pytest


def need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (loop devices, mounts, sysfs writes)")


def need_tools(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} on PATH (installed by scripts/setup)")
