"""A small ctypes binding of fanotify(7): close-after-write events for a whole mount.

fanotify tells which process (pid) closed a file it had written, and hands over
an open descriptor of that very file, so a file renamed or deleted right after
the write can still be read, and holding the descriptor keeps the medium busy
(a clean unmount waits). It needs CAP_SYS_ADMIN; callers fall back to inotify.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import struct
from dataclasses import dataclass

FAN_CLOSE_WRITE = 0x00000008
FAN_Q_OVERFLOW = 0x00004000
FAN_CLOEXEC = 0x00000001
FAN_CLASS_NOTIF = 0x00000000
FAN_UNLIMITED_QUEUE = 0x00000010
FAN_MARK_ADD = 0x00000001
FAN_MARK_REMOVE = 0x00000002
FAN_MARK_MOUNT = 0x00000010
FAN_MARK_IGNORED_MASK = 0x00000020
FAN_MARK_IGNORED_SURV_MODIFY = 0x00000040
FAN_NOFD = -1
AT_FDCWD = -100

# struct fanotify_event_metadata: u32 event_len; u8 vers; u8 reserved; u16 metadata_len;
# u64 mask; s32 fd; s32 pid
_META = struct.Struct("=IBBHQii")

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.fanotify_init.argtypes = [ctypes.c_uint, ctypes.c_uint]
_libc.fanotify_init.restype = ctypes.c_int
_libc.fanotify_mark.argtypes = [ctypes.c_int, ctypes.c_uint, ctypes.c_uint64, ctypes.c_int, ctypes.c_char_p]
_libc.fanotify_mark.restype = ctypes.c_int


@dataclass
class FanEvent:
    fd: int        # open O_RDONLY descriptor of the file; the receiver must close it
    pid: int       # the process that closed the file (may already have exited)
    overflow: bool = False


class Fanotify:
    """One fanotify group. add_mount(path) watches every close-after-write on that mount."""

    def __init__(self) -> None:
        flags = FAN_CLOEXEC | FAN_CLASS_NOTIF | FAN_UNLIMITED_QUEUE
        fd = _libc.fanotify_init(flags, os.O_RDONLY | os.O_LARGEFILE | os.O_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"fanotify_init: {os.strerror(err)}")
        self.fd = fd

    def _mark(self, op: int, path: str) -> None:
        rc = _libc.fanotify_mark(self.fd, op, FAN_CLOSE_WRITE, AT_FDCWD, os.fsencode(path))
        if rc < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"fanotify_mark {path}: {os.strerror(err)}")

    def add_mount(self, path: str) -> None:
        self._mark(FAN_MARK_ADD | FAN_MARK_MOUNT, path)

    def ignore(self, path: str) -> None:
        """No events for this one file (an inode ignore mark that survives its writes)."""
        self._mark(FAN_MARK_ADD | FAN_MARK_IGNORED_MASK | FAN_MARK_IGNORED_SURV_MODIFY, path)

    def remove_mount(self, path: str) -> None:
        try:
            self._mark(FAN_MARK_REMOVE | FAN_MARK_MOUNT, path)
        except OSError:
            pass  # the mount is already gone

    def read(self, bufsize: int = 64 * 1024) -> list[FanEvent]:
        """Block until events arrive; returns them (each with an fd to close)."""
        data = os.read(self.fd, bufsize)
        out: list[FanEvent] = []
        off = 0
        while off + _META.size <= len(data):
            event_len, _vers, _res, _mlen, mask, fd, pid = _META.unpack_from(data, off)
            if event_len < _META.size:
                break
            if mask & FAN_Q_OVERFLOW:
                out.append(FanEvent(-1, 0, overflow=True))
            elif fd >= 0:
                out.append(FanEvent(fd, pid))
            off += event_len
        return out

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
