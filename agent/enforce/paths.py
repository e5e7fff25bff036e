"""Where a file behind an open descriptor is now: it may have been renamed or deleted
between its writer's close and the verdict."""
from __future__ import annotations

import os


def current_path(fd: int, st: os.stat_result, mountpoint: str, walk_limit: int = 20000) -> str | None:
    """The file's path now, or None if deleted.

    /proc/self/fd gives the name at open time on some FUSE filesystems, so the
    answer is checked by inode, then searched in the same folder, then on the medium."""
    def same(p: str) -> bool:
        try:
            s = os.lstat(p)
        except OSError:
            return False
        return s.st_ino == st.st_ino and s.st_dev == st.st_dev

    try:
        link = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None
    if link.endswith(" (deleted)") and not os.path.exists(link):
        link = link[: -len(" (deleted)")]
    if same(link):
        return link
    if st.st_nlink == 0:
        return None
    seen = 0
    for top in (os.path.dirname(link), mountpoint):
        for root, _dirs, files in os.walk(top):
            for name in files:
                seen += 1
                p = os.path.join(root, name)
                if same(p):
                    return p
                if seen > walk_limit:
                    return None
            if top != mountpoint:
                break  # only the folder itself, not below
    return None


def shown_path(fd: int, path: str | None) -> str:
    """A path to name in events when the file itself is gone: its name at open time."""
    if path:
        return path
    try:
        return os.readlink(f"/proc/self/fd/{fd}").removesuffix(" (deleted)")
    except OSError:
        return f"fd:{fd}"
