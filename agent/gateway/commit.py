"""Putting judged content on the medium atomically: copy to a hidden temporary name
beside the target, fsync, rename over the target. A half-written file is never
visible under the real name, and a crash leaves only the hidden name (removed on
recovery)."""
from __future__ import annotations

import os

from .copy import copy_file

# filesystems whose owner and mode come from mount options: setting them per file is a
# round trip to the driver (a FUSE one for exfat-fuse and fusefat) that changes nothing
OWNERLESS = frozenset({"vfat", "msdos", "exfat", "fuseblk", "fuse.exfat", "fuse.fusefat", "fuseblk.fusefat"})
# FAT keeps no times for its root folder (it has no directory entry): the kernel's vfat
# accepts and forgets them, fusefat's driver dies on them (rsync -a to a stick's root)
FAT = frozenset({"vfat", "msdos", "fuse.fusefat", "fuseblk.fusefat"})


def _at(rel: str) -> str:
    return rel or "."


def copy_phase(root_fd: int, tmp_rel: str, target_rel: str, src_fd: int, size: int, new: bool, mode: int,
               uid: int, gid: int, times: tuple[int, int] | None, fsync: bool = True,
               owners: bool = True) -> None:
    fd = os.open(tmp_rel, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600, dir_fd=root_fd)
    try:
        copy_file(src_fd, fd, size)
        if owners:
            _set_owner(fd, root_fd, target_rel, new, mode, uid, gid)
        if times:
            os.utime(fd, ns=times)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)


def _set_owner(fd: int, root_fd: int, target_rel: str, new: bool, mode: int, uid: int, gid: int) -> None:
    if not new:
        # an overwrite keeps the old file's owner and mode (we write as root)
        try:
            st = os.stat(target_rel, dir_fd=root_fd)
            mode, uid, gid = st.st_mode & 0o7777, st.st_uid, st.st_gid
        except OSError:
            pass
    for fn, args in ((os.fchown, (uid, gid)), (os.fchmod, (mode,))):
        try:
            fn(fd, *args)
        except OSError:
            pass   # a filesystem not in OWNERLESS that still refuses


def rename_phase(root_fd: int, tmp_rel: str, target_rel: str, fsync: bool = True) -> None:
    os.rename(tmp_rel, target_rel, src_dir_fd=root_fd, dst_dir_fd=root_fd)
    if not fsync:
        return
    try:
        dfd = os.open(_at(os.path.dirname(target_rel)), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC,
                      dir_fd=root_fd)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass   # some FUSE filesystems refuse fsync on directories


def remove_quietly(root_fd: int, tmp_rel: str) -> None:
    try:
        os.unlink(tmp_rel, dir_fd=root_fd)
    except OSError:
        pass

