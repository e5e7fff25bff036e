"""The commit's file copy (agent/gateway/copy.py): between two filesystems, as from the
host's staging folder to a medium, it goes through a buffer (not sendfile, whose 64 KiB
pipe halves the write requests a FUSE medium gets); the bytes, the holes of a sparse
file and a source that shrank are what they must be."""
from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from baomi.agent.gateway import copy as gcopy

SHM = Path("/dev/shm")


@pytest.fixture
def other_fs(tmp_path: Path) -> Path:
    """A folder on another filesystem than tmp_path (tmpfs), so copy_file_range cannot be used."""
    if not SHM.is_dir() or os.stat(SHM).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs /dev/shm on a filesystem of its own")
    d = Path(os.path.join(SHM, f"baomi-copy-{os.getpid()}"))
    d.mkdir()
    yield d
    for f in d.iterdir():
        f.unlink()
    d.rmdir()


def _copy(src: Path, dst: Path, size: int | None = None, sparse: bool = True) -> None:
    s = os.open(src, os.O_RDONLY)
    d = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        gcopy.copy_file(s, d, os.fstat(s).st_size if size is None else size, sparse=sparse)
    finally:
        os.close(s)
        os.close(d)


@pytest.mark.parametrize("size", [0, 1, 4096, gcopy.BUFFER, 3 * gcopy.BUFFER + 17])
def test_copy_between_filesystems_keeps_every_byte(other_fs: Path, tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    (other_fs / "src").write_bytes(data)
    _copy(other_fs / "src", tmp_path / "dst")
    assert (tmp_path / "dst").read_bytes() == data


def test_copy_between_filesystems_never_uses_sendfile(other_fs: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: commits to exfat-fuse went through sendfile's 64 KiB pipe and took about
    30 % longer than through a buffer of 1 MiB (bench/gateway.py)."""
    def refuse(*_a: object) -> int:
        raise AssertionError("sendfile used")
    monkeypatch.setattr(os, "sendfile", refuse)
    data = os.urandom(2 * gcopy.BUFFER + 5)
    (other_fs / "src").write_bytes(data)
    _copy(other_fs / "src", tmp_path / "dst")
    assert (tmp_path / "dst").read_bytes() == data


def test_sparse_file_keeps_its_hole(other_fs: Path, tmp_path: Path) -> None:
    head, tail = os.urandom(gcopy.BUFFER), os.urandom(4096)
    with open(other_fs / "src", "wb") as f:
        f.write(head)
        f.seek(64 * gcopy.BUFFER)
        f.write(tail)
    _copy(other_fs / "src", tmp_path / "dst")
    got = (tmp_path / "dst").read_bytes()
    assert len(got) == 64 * gcopy.BUFFER + len(tail)
    assert got[:len(head)] == head and got[-len(tail):] == tail and got[len(head):-len(tail)].count(0) == \
        64 * gcopy.BUFFER - len(head)
    assert os.stat(tmp_path / "dst").st_blocks * 512 < 8 * gcopy.BUFFER, "the hole was written out as zeros"


def test_a_source_that_shrank_is_an_error_not_a_short_file(other_fs: Path, tmp_path: Path) -> None:
    (other_fs / "src").write_bytes(b"x" * 1000)
    with pytest.raises(OSError) as err:
        _copy(other_fs / "src", tmp_path / "dst", size=5000, sparse=False)
    assert err.value.errno == errno.EIO
