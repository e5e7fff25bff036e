"""Who a process is: its user, command, logind session and language.

Enforcement reads it for the process that wrote a file (fanotify's pid) at the
moment the event arrives, because a `cp` is usually gone a few milliseconds
after its last close; cached per pid for bursts.
"""
from __future__ import annotations

import os
import pwd
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from baomi.common.events import process_obj, user_obj

_SESSION_RE = re.compile(r"/session-([^/.]+)\.scope")


@dataclass
class ProcessInfo:
    pid: int | None = None
    uid: int | None = None
    name: str | None = None
    comm: str | None = None
    exe: str | None = None
    session: str | None = None
    lang: str | None = None  # the writer's LANG, for notifications in their language
    extra: dict[str, Any] = field(default_factory=dict)

    def user_json(self) -> dict[str, Any] | None:
        return user_obj(self.uid, self.name, self.session)

    def process_json(self) -> dict[str, Any] | None:
        return process_obj(self.pid, self.exe, self.comm)


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


def describe_pid(pid: int) -> ProcessInfo:
    w = ProcessInfo(pid=pid)
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


class ProcessCache:
    """pid -> ProcessInfo, short-lived (pids are reused) and bounded."""

    def __init__(self, size: int = 256):
        self._cache: OrderedDict[int, ProcessInfo] = OrderedDict()
        self._size = size

    def get(self, pid: int) -> ProcessInfo:
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


def file_owner(st: os.stat_result) -> ProcessInfo:
    """When the process is unknown, the file's owner is the best guess at who wrote it."""
    return ProcessInfo(uid=st.st_uid, name=user_name(st.st_uid), extra={"from": "file owner"})
