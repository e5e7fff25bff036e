"""Can this host run the gateway? The agent falls back to after-write mode when not."""
from __future__ import annotations

import os
import shutil


def available() -> tuple[bool, str]:
    if os.geteuid() != 0:
        return False, "not root: bind mounts and the hidden real mount need root"
    if not os.path.exists("/dev/fuse"):
        return False, "/dev/fuse missing (fuse module not loaded?)"
    try:
        os.close(os.open("/dev/fuse", os.O_RDWR | os.O_CLOEXEC))
    except OSError as e:
        return False, f"/dev/fuse cannot be opened: {e.strerror}"
    try:
        import pyfuse3  # noqa: F401
        import trio  # noqa: F401
    except Exception as e:  # ImportError or a broken libfuse3 shared object
        return False, f"pyfuse3/trio import failed: {e}"
    if shutil.which("fusermount3") is None and shutil.which("fusermount") is None:
        # root mounts without it, but libfuse falls back to it on some errors and the
        # user-side tools (udisks) expect it
        return False, "fusermount3 missing (package fuse3)"
    return True, "ok"
