"""The device gate's effects: small adapters, each returning what it did.

- deauthorize(): write 0 to the USB mass-storage interface's `authorized`
  attribute, so the kernel unbinds the storage driver;
- set_read_only(): BLKROSET on the block device (before anyone mounts it);
- unmount() / remount_read_only(): for media that were mounted before the gate ran.
"""
from __future__ import annotations

import fcntl
import logging
import os
import shutil
import struct
import subprocess
from pathlib import Path

log = logging.getLogger(__name__)

BLKROSET = 0x125D   # _IO(0x12, 93)
BLKROGET = 0x125E


def deauthorize(interface: Path) -> bool:
    """De-authorize one USB interface (echo 0 > authorized)."""
    try:
        with open(interface / "authorized", "w") as f:
            f.write("0")
        return True
    except OSError as exc:
        log.warning("cannot de-authorize %s: %s", interface, exc)
        return False


def set_read_only(devnode: str, read_only: bool = True) -> bool:
    """BLKROSET: the block layer refuses writes; a later mount comes up read-only."""
    try:
        fd = os.open(devnode, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        log.warning("cannot open %s to set it read-only: %s", devnode, exc)
        return False
    try:
        fcntl.ioctl(fd, BLKROSET, struct.pack("i", 1 if read_only else 0))
        return True
    except OSError as exc:
        log.warning("BLKROSET %s: %s", devnode, exc)
        return False
    finally:
        os.close(fd)


def is_read_only(devnode: str) -> bool | None:
    try:
        fd = os.open(devnode, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        buf = fcntl.ioctl(fd, BLKROGET, struct.pack("i", 0))
        return struct.unpack("i", buf)[0] != 0
    except OSError:
        return None
    finally:
        os.close(fd)


def _run(cmd: list[str], timeout: float = 10.0) -> tuple[bool, str]:
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    return res.returncode == 0, (res.stderr or res.stdout).strip()


def unmount(mountpoint: str) -> tuple[bool, str]:
    """Unmount; if busy, detach lazily so no new file can be opened on it."""
    ok, msg = _run(["umount", mountpoint])
    if ok:
        return True, "unmounted"
    if not os.path.exists(mountpoint):
        return False, f"mount point gone: {msg}"
    ok2, msg2 = _run(["umount", "-l", mountpoint])
    return ok2, ("lazily unmounted (busy)" if ok2 else f"{msg}; {msg2}")


def mount_read_only(devnode: str, mountpoint: str, fs_type: str) -> tuple[bool, str]:
    """Mount a device read-only at mountpoint (FUSE exFAT through exfat-fuse)."""
    if fs_type == "exfat" and shutil.which("mount.exfat-fuse"):
        return _run(["mount.exfat-fuse", "-o", "ro", devnode, mountpoint])
    cmd = ["mount", "-o", "ro"] + (["-t", fs_type] if fs_type else []) + [devnode, mountpoint]
    return _run(cmd)


def remount_read_only(devnode: str, mountpoint: str, fs_type: str) -> tuple[bool, str]:
    """Unmount a read-write mount, set the device read-only, mount it again read-only."""
    ok, msg = unmount(mountpoint)
    set_read_only(devnode)
    if not ok:
        return False, msg
    if not os.path.isdir(mountpoint):
        return False, "mount point disappeared; left unmounted"
    ok, msg2 = mount_read_only(devnode, mountpoint, fs_type)
    return ok, ("remounted read-only" if ok else f"unmounted; read-only mount failed: {msg2}")
