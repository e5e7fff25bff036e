"""Helpers for the gateway tests: a judge that really decides, marked content that can
be searched for on the raw device, and a held medium (loop device + gateway)."""
from __future__ import annotations

import errno
import mmap
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable

from baomi.agent.gateway import Judgement, StagedFile

MARKS = ("机密★1年".encode(), b"TOP SECRET")
PIECE = 64


def is_marked(path: Path | str) -> bool:
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            return False
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            return any(m.find(mark) >= 0 for mark in MARKS)


def judge(staged: StagedFile) -> Judgement:
    if is_marked(staged.host_path):
        return Judgement(commit=False, errno=errno.EACCES, reason="marked")
    return Judgement(commit=True)


def marked_bytes(size: int = 64 * 1024, mark: bytes = MARKS[0]) -> bytes:
    """Random bytes around a marking: every 64-byte piece is unique to this file."""
    head = os.urandom(size // 2)
    return head + mark + os.urandom(max(0, size - len(head) - len(mark)))


def clean_bytes(size: int = 64 * 1024) -> bytes:
    while True:
        b = os.urandom(size)
        if not any(m in b for m in MARKS):
            return b


def pieces(data: bytes, n: int = 6) -> list[bytes]:
    """n pieces of 64 bytes spread over data, each at offset 128 of a 512-byte sector
    of the file, so fragmentation on the medium cannot split one."""
    if len(data) < PIECE:
        return [data]
    step = max(1, (len(data) // 512) // n)
    out = []
    for i in range(n):
        off = min(i * step * 512 + 128, len(data) - PIECE)
        out.append(data[off:off + PIECE])
    return out


def raw_device_has(devnode: str, needles: list[bytes]) -> list[bytes]:
    """Which needles (pieces() of file contents) are found on the raw block device.

    File data on ext4, exFAT and FAT starts on a sector boundary and pieces() takes
    each piece at offset 128 of a 512-byte sector of the file, so every copy of a piece
    on the device sits at offset 128 of a device sector: one set lookup per sector
    covers the whole device quickly. Short needles fall back to a plain search."""
    if not needles:
        return []
    os.sync()
    subprocess.run(["blockdev", "--flushbufs", devnode], capture_output=True)
    aligned = {n for n in needles if len(n) == PIECE}
    others = [n for n in needles if len(n) != PIECE]
    found: set[bytes] = set()
    with open(devnode, "rb", buffering=0) as f:
        tail = b""
        while True:
            chunk = f.read(8 << 20)
            if not chunk:
                break
            mv = memoryview(chunk)
            for off in range(128, len(chunk) - PIECE + 1, 512):
                piece = bytes(mv[off:off + PIECE])
                if piece in aligned:
                    found.add(piece)
            buf = tail + chunk
            found.update(n for n in others if n in buf)
            tail = buf[-PIECE:]
    return [n for n in needles if n in found]


def assert_not_on_device(devnode: str, refused: list[bytes]) -> None:
    needles = [p for data in refused for p in pieces(data)]
    hits = raw_device_has(devnode, needles)
    assert not hits, f"{len(hits)} pieces of refused content found on the raw device {devnode}"


class Events:
    def __init__(self) -> None:
        self.items: list[tuple[str, dict]] = []
        self.cond = threading.Condition()

    def __call__(self, name: str, fields: dict) -> None:
        with self.cond:
            self.items.append((name, fields))
            self.cond.notify_all()

    def named(self, name: str) -> list[dict]:
        with self.cond:
            return [f for n, f in self.items if n == name]

    def wait(self, name: str, pred: Callable[[dict], bool] = lambda f: True, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for n, f in self.items:
                    if n == name and pred(f):
                        return f
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {name} event within {timeout}s; got {[n for n, _ in self.items]}")
                self.cond.wait(left)


def run(*cmd: str, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def stat_returns(path: Path, timeout: float = 5) -> bool:
    """stat(path) in a child process returns (any result) within timeout: nothing hangs."""
    try:
        subprocess.run(["stat", str(path)], capture_output=True, timeout=timeout)
        return True
    except subprocess.TimeoutExpired:
        return False


def is_mount(path: Path | str) -> bool:
    p = os.path.abspath(path)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == p for line in f)
