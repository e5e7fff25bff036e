"""Who wrote a file: the writing process (from fanotify's pid) and its user.

Read at the moment the event arrives, because a `cp` is usually gone a few
milliseconds after its last close. Cached per pid for bursts.
"""
from __future__ import annotations

import os
import pwd
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

_SESSION_RE = re.compile(r"/session-([^/.]+)\.scope")


@dataclass
class Writer:
    pid: int | None = None
    uid: int | None = None
    name: str | None = None
    comm: str | None = None
    exe: str | None = None
    session: str | None = None
    lang: str | None = None  # the writer's LANG, for notifications in their language
    extra: dict[str, Any] = field(default_factory=dict)

    def user_json(self) -> dict[str, Any] | None:
        if self.uid is None:
            return None
        return {"uid": self.uid, "name": self.name, "session": self.session}

    def process_json(self) -> dict[str, Any] | None:
        if self.pid is None:
            return None
        return {"pid": self.pid, "exe": self.exe, "comm": self.comm}


def user_name(uid: int) -> str | None:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read(256 * 1024)
    except OSError:
        return None


def lang_of(pid: int) -> str | None:
    env = _read(f"/proc/{pid}/environ")
    if env:
        values = dict(kv.split(b"=", 1) for kv in env.split(b"\0") if b"=" in kv)
        for key in (b"LC_ALL", b"LC_MESSAGES", b"LANG"):
            if values.get(key):
                return values[key].decode("utf-8", "replace")
    return None


def describe_pid(pid: int) -> Writer:
    w = Writer(pid=pid)
    status = _read(f"/proc/{pid}/status")
    if status is None:
        return w  # already exited
    for line in status.decode("utf-8", "replace").splitlines():
        if line.startswith("Name:"):
            w.comm = line.split(None, 1)[1] if len(line.split(None, 1)) > 1 else None
        elif line.startswith("Uid:"):
            w.uid = int(line.split()[1])  # the real uid: who started the copy
    try:
        w.exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        pass
    cgroup = _read(f"/proc/{pid}/cgroup")
    if cgroup:
        m = _SESSION_RE.search(cgroup.decode("utf-8", "replace"))
        if m:
            w.session = m.group(1)
    w.lang = lang_of(pid)
    if w.uid is not None:
        w.name = user_name(w.uid)
    return w


class WriterCache:
    """pid -> Writer, short-lived (pids are reused) and bounded."""

    def __init__(self, size: int = 256):
        self._cache: OrderedDict[int, Writer] = OrderedDict()
        self._size = size

    def get(self, pid: int) -> Writer:
        w = self._cache.get(pid)
        if w is not None:
            # a `cp` that already exited is still the writer of its last files
            self._cache.move_to_end(pid)
            return w
        w = describe_pid(pid)
        if w.uid is not None:
            self._cache[pid] = w
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return w


def owner_writer(st: os.stat_result) -> Writer:
    """When the process is unknown, the file's owner is the best guess at who wrote it."""
    return Writer(uid=st.st_uid, name=user_name(st.st_uid), extra={"from": "file owner"})
