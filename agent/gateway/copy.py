"""Kernel-side file copies: copy_file_range where the kernel allows it, else sendfile.
Holes in sparse staged files are skipped (SEEK_DATA), the target is sized with ftruncate."""
from __future__ import annotations

import errno
import os

CHUNK = 16 << 20
_NO_CFR = {errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EBADF, errno.EPERM}


def _copy_range(src: int, dst: int, off: int, end: int) -> None:
    use_cfr = True
    while off < end:
        n = min(CHUNK, end - off)
        done = 0
        if use_cfr:
            try:
                done = os.copy_file_range(src, dst, n, off, off)
            except OSError as e:
                if e.errno not in _NO_CFR:
                    raise
                use_cfr = False
        if not use_cfr:
            os.lseek(dst, off, os.SEEK_SET)
            done = os.sendfile(dst, src, off, n)
        if done == 0:
            raise OSError(errno.EIO, "short copy (source shrank?)")
        off += done


def _extend(dst: int, start: int, end: int) -> None:
    """Grow dst from start to end: a hole where the fs allows it, zeros where it does
    not (the FUSE FAT driver refuses to extend by ftruncate or by writing past EOF)."""
    try:
        os.ftruncate(dst, end)
        return
    except OSError:
        pass
    zeros = bytes(min(CHUNK, 1 << 20))
    off = start
    while off < end:
        off += os.pwrite(dst, zeros[:min(len(zeros), end - off)], off)


def copy_file(src: int, dst: int, size: int, sparse: bool = True) -> None:
    """Copy bytes [0, size) of src to dst (both plain fds, dst empty)."""
    written = 0
    off = 0
    while off < size:
        if sparse:
            try:
                data = os.lseek(src, off, os.SEEK_DATA)
            except OSError as e:
                if e.errno == errno.ENXIO:   # only a hole remains
                    break
                sparse, data = False, off
            if data >= size:
                break
            hole = os.lseek(src, data, os.SEEK_HOLE) if sparse else size
        else:
            data, hole = off, size
        if data > written:
            _extend(dst, written, data)
        end = min(hole, size)
        _copy_range(src, dst, data, end)
        written = off = end
    if written < size:
        _extend(dst, written, size)
