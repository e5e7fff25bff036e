"""Small filesystem helpers every durable file in baomi goes through.

atomic_write: a file either exists whole (fsynced, then renamed into place and
its folder fsynced) or keeps its previous content. Modes are explicit, so a
umask of 022 never leaves a state file world-readable.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import BinaryIO, Callable

CHUNK = 1024 * 1024


def fsync_dir(path: str | Path, strict: bool = False) -> None:
    """Make a rename or unlink in `path` durable. Some FUSE filesystems refuse fsync on
    folders; that is ignored unless `strict`."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        if strict:
            raise
        return
    try:
        os.fsync(fd)
    except OSError:
        if strict:
            raise
    finally:
        os.close(fd)


def atomic_write(path: str | Path, data: bytes | Callable[[BinaryIO], None], mode: int = 0o600,
                 fsync: bool = True, fsync_folder: bool = True) -> None:
    """Write `data` (bytes, or a function writing to the open file) to `path` atomically.
    Without fsync the file is whole or absent after a crash of the process, not of the machine."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.fchmod(fd, mode)  # O_CREAT's mode is masked by the umask; the file's must not be
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if fsync and fsync_folder:
        fsync_dir(path.parent, strict=True)


def sha256_stream(f: BinaryIO) -> str:
    h = hashlib.sha256()
    for block in iter(lambda: f.read(CHUNK), b""):
        h.update(block)
    return h.hexdigest()


def sha256_fd(fd: int) -> str:
    """sha256 of everything behind an open descriptor, read with pread (the offset is untouched)."""
    h, off = hashlib.sha256(), 0
    while block := os.pread(fd, CHUNK, off):
        h.update(block)
        off += len(block)
    return h.hexdigest()


def private_dir(path: str | Path, mode: int = 0o700) -> Path:
    """mkdir -p with an explicit mode on the leaf, whatever the umask."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, mode)
    return path
