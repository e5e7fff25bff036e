"""What is already on a medium when it is mounted: one medium.inventory event
with counts and the highest level found (marked files on personal media are
reported one by one as file.discovered by the pipeline)."""
from __future__ import annotations

import os
import threading
import time
from collections import Counter
from typing import Any, Callable

from baomi.common.levels import Level
from ..model import MountedMedium
from ..scan.verdict import Verdict


class InventoryRun:
    def __init__(self, ctx: Any, medium: MountedMedium, on_done: Callable[["InventoryRun"], None] | None = None):
        self.ctx, self.medium, self.on_done = ctx, medium, on_done
        self.levels: Counter[str] = Counter()
        self.files = self.bytes = self.uninspectable = self.skipped = 0
        self.highest = Level.PUBLIC
        self._outstanding = 0
        self._walk_done = False
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self.event: dict[str, Any] | None = None
        self.finished = threading.Event()

    def walk(self, submit: Callable[[str], None], stopping: threading.Event) -> None:
        """Queue every regular file on the medium (not following symlinks), then wait for the last."""
        root = str(self.medium.mountpoint)
        for top, dirs, files in os.walk(root):
            if stopping.is_set():
                break
            for name in files:
                path = os.path.join(top, name)
                if os.path.isfile(path) and not os.path.islink(path):
                    with self._lock:
                        self._outstanding += 1
                    submit(path)
        with self._lock:
            self._walk_done = True
        self._maybe_finish()

    def add(self, v: Verdict, size: int) -> None:
        with self._lock:
            self.files += 1
            self.bytes += size
            self.levels[v.level.id] += 1
            if not v.inspectable:
                self.uninspectable += 1
            self.highest = max(self.highest, v.level)

    def add_skipped(self) -> None:
        with self._lock:
            self.skipped += 1

    def item_done(self) -> None:
        with self._lock:
            self._outstanding -= 1
        self._maybe_finish()

    def _maybe_finish(self) -> None:
        with self._lock:
            if not self._walk_done or self._outstanding > 0 or self.finished.is_set():
                return
            self.finished.set()
        m = self.medium
        self.event = self.ctx.record(
            "medium.inventory", severity="medium" if (m.medium_class == "personal" and self.highest >= Level.CONFIDENTIAL) else "info",
            medium=dict(m.identity, mountpoint=str(m.mountpoint)),
            details={"files": self.files, "bytes": self.bytes, "levels": dict(self.levels),
                     "highest_level": self.highest.id, "uninspectable": self.uninspectable,
                     "marked": sum(n for lvl, n in self.levels.items() if Level.parse(lvl) >= Level.CONFIDENTIAL),
                     "not_read": self.skipped, "medium_class": m.medium_class,
                     "duration_s": round(time.monotonic() - self._started, 3)})
        if self.on_done:
            self.on_done(self)
