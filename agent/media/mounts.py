"""The mount table: parse /proc/self/mountinfo and watch it for changes.

The kernel flags /proc/self/mountinfo with POLLPRI|POLLERR whenever the mount
table changes, so the watcher sleeps in poll() instead of re-reading on a timer.
"""
from __future__ import annotations

import logging
import os
import re
import select
import threading
import dataclasses
from dataclasses import dataclass
from typing import Callable

log = logging.getLogger(__name__)

MOUNTINFO = "/proc/self/mountinfo"
_OCTAL = re.compile(r"\\([0-7]{3})")


def unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as \\ooo."""
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


@dataclass(frozen=True)
class Mount:
    mount_id: int
    devnum: str          # "major:minor"
    root: str
    mountpoint: str
    options: str         # per-mount options (rw/ro, nosuid...)
    fstype: str
    source: str
    super_options: str
    propagation: str = ""  # optional fields: "shared:N", "master:N", or "" when private

    @property
    def read_only(self) -> bool:
        return "ro" in self.options.split(",") or "ro" in self.super_options.split(",")


def as_users_see_them(device_mounts: list[Mount], hidden_root: str, held_at: str | None) -> dict[str, Mount]:
    """A device's mounts by the mount point users know. While the staging gateway holds the
    medium, its real filesystem is mounted under `hidden_root` and users reach it at
    `held_at` through the gateway's view: that hidden mount counts as the mount at `held_at`,
    so taking a medium over is not seen as an unmount and a mount."""
    out: dict[str, Mount] = {}
    for m in device_mounts:
        if m.mountpoint == hidden_root or m.mountpoint.startswith(hidden_root.rstrip("/") + "/"):
            if held_at:
                out[held_at] = dataclasses.replace(m, mountpoint=held_at)
            continue
        out[m.mountpoint] = m
    return out


def parse_mountinfo(text: str) -> list[Mount]:
    """Parse mountinfo text; malformed lines are skipped (logged), never fatal."""
    out = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            left, _, right = line.partition(" - ")
            f = left.split()
            r = right.split()
            out.append(Mount(mount_id=int(f[0]), devnum=f[2], root=unescape(f[3]), mountpoint=unescape(f[4]),
                             options=f[5], fstype=r[0], source=unescape(r[1]) if len(r) > 1 else "",
                             super_options=r[2] if len(r) > 2 else "", propagation=" ".join(f[6:])))
        except (IndexError, ValueError):
            log.warning("unparsable mountinfo line: %r", line)
    return out


def read_mounts(path: str = MOUNTINFO) -> list[Mount]:
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        return parse_mountinfo(f.read())


def mounts_of(mounts: list[Mount], devnum: str, devnode: str) -> list[Mount]:
    """Mounts of one block device: by device number, or by source (FUSE block filesystems)."""
    real = os.path.realpath(devnode)
    return [m for m in mounts if m.devnum == devnum or (m.source.startswith("/dev/")
                                                      and os.path.realpath(m.source) == real)]


class MountWatcher:
    """Calls `on_change(mounts)` with the whole table whenever it changes (and once at start)."""

    def __init__(self, on_change: Callable[[list[Mount]], None], stopping: threading.Event,
                 path: str = MOUNTINFO):
        self.on_change, self.stopping, self.path = on_change, stopping, path
        self.thread = threading.Thread(target=self._run, name="baomi-mounts", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        with open(self.path, "rb") as f:
            poller = select.poll()
            poller.register(f.fileno(), select.POLLPRI | select.POLLERR)
            last = None
            while not self.stopping.is_set():
                f.seek(0)
                text = f.read().decode("utf-8", "surrogateescape")
                if text != last:
                    last = text
                    try:
                        self.on_change(parse_mountinfo(text))
                    except Exception:
                        log.exception("mount change handler failed")
                poller.poll(500)  # wakes at once on a change; the timeout only checks `stopping`
