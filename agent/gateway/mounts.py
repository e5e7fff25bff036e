"""Mount table reading and the few mount(2)/umount2(2) calls the gateway needs.

Called through libc directly: exact errno, no helper programs (umount(8) would look
for umount.fuse.* helpers), no per-call process start.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import subprocess
import time
from pathlib import Path

from ..media.mounts import MOUNTINFO, Mount, read_mounts

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]

MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
MNT_DETACH = 2


# the mount table as the media component reads it (one parser for the whole agent)
MountEntry = Mount


def mountinfo(path: str = MOUNTINFO) -> list[Mount]:
    return read_mounts(path)


def mount_at(path: Path | str, table: list[MountEntry] | None = None) -> MountEntry | None:
    """The topmost mount at path (the one a lookup reaches)."""
    p = os.path.abspath(path)
    found = None
    for m in table if table is not None else mountinfo():
        if m.mountpoint == p:
            found = m   # later lines are mounted on top
    return found


def _check(rc: int, what: str) -> None:
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")


def bind(src: Path | str, dst: Path | str) -> None:
    _check(_libc.mount(os.fsencode(src), os.fsencode(dst), None, MS_BIND, None), f"bind {src} -> {dst}")


def bind_in_child(src: Path | str, dst: Path | str, timeout: float = 30) -> None:
    try:
        r = subprocess.run(["mount", "--no-mtab", "--bind", str(src), str(dst)], capture_output=True,
                           text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise OSError(errno.EIO, f"mount --bind {src} {dst}: {e}")
    if r.returncode != 0:
        raise OSError(errno.EIO, f"mount --bind {src} {dst}: {r.stderr.strip()}")


def make_private(path: Path | str) -> None:
    _check(_libc.mount(None, os.fsencode(path), None, MS_PRIVATE, None), f"make-private {path}")


def umount(path: Path | str, lazy: bool = False) -> None:
    _check(_libc.umount2(os.fsencode(path), MNT_DETACH if lazy else 0), f"umount {path}")


def umount_patiently(path: Path | str, tries: int = 30, delay: float = 0.1) -> bool:
    """umount, retrying while busy; lazy as the last resort. True when it was not lazy."""
    for _ in range(tries):
        try:
            umount(path)
            return True
        except OSError as e:
            if e.errno in (errno.EINVAL, errno.ENOENT):   # not mounted (any more)
                return True
            if e.errno != errno.EBUSY:
                break
        time.sleep(delay)
    try:
        umount(path, lazy=True)
    except OSError:
        pass
    return False


def ensure_private_dir(path: Path) -> bool:
    """path exists, is 0700 root, and is a private mount: mounts made below it do not
    propagate anywhere (mount --move and propagation to peers would expose them).
    True when this call made the bind mount (its caller undoes it when done)."""
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, 0, 0)
    os.chmod(path, 0o700)
    made = False
    m = mount_at(path)
    if m is None:
        bind(path, path)
        made = True
        m = mount_at(path)
    if m is not None and m.propagation.strip():
        make_private(path)
    return made


def fs_uuid(source: str) -> str:
    if not source.startswith("/dev/"):
        return ""
    try:
        return subprocess.run(["blkid", "-s", "UUID", "-o", "value", source], capture_output=True,
                              text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
