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
from dataclasses import dataclass
from pathlib import Path

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]

MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
MNT_DETACH = 2


@dataclass(frozen=True)
class MountEntry:
    mount_id: int
    dev: str             # major:minor of the filesystem
    root: str            # path inside the filesystem that is mounted here (bind mounts)
    mountpoint: str
    propagation: str     # "shared:N", "master:N" or "" (private)
    fstype: str
    source: str


def _unescape(s: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 4 <= len(s) and s[i + 1:i + 4].isdigit():
            out.append(chr(int(s[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def mountinfo(path: str = "/proc/self/mountinfo") -> list[MountEntry]:
    entries = []
    with open(path) as f:
        for line in f:
            left, _, right = line.partition(" - ")
            a, b = left.split(), right.split()
            if len(a) < 6 or len(b) < 2:
                continue
            entries.append(MountEntry(int(a[0]), a[2], _unescape(a[3]), _unescape(a[4]),
                                      " ".join(a[6:]), b[0], _unescape(b[1])))
    return entries


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
