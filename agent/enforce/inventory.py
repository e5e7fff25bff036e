"""What is already on a medium when it is mounted: one medium.inventory event
with counts and the highest level found, and one file.discovered per marked
file the copy policy would have blocked (decide/at_rest.py)."""
from __future__ import annotations

import os
import threading
import time
from collections import Counter
from typing import Any, Callable

from baomi.common.events import file_obj, medium_obj
from baomi.common.fsutil import sha256_fd
from baomi.common.levels import Level
from ..decide.at_rest import decide_at_rest, inventory_severity
from ..messages import MountedMedium
from ..scan.verdict import Verdict


class InventoryRun:
    def __init__(self, ctx: Any, medium: MountedMedium, on_done: Callable[["InventoryRun"], None] | None = None,
                 root: str | None = None):
        self.ctx, self.medium, self.on_done = ctx, medium, on_done
        # where the files are read: the mount point, or a held medium's real filesystem
        self.root = root or str(medium.mountpoint)
        self.levels: Counter[str] = Counter()
        self.files = self.bytes = self.uninspectable = self.skipped = self.discovered = 0
        self.highest = Level.PUBLIC
        self._outstanding = 0
        self._walk_done = False
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self.event: dict[str, Any] | None = None
        self.finished = threading.Event()

    def walk(self, submit: Callable[[str], None], stopping: threading.Event) -> None:
        """Queue every regular file on the medium (not following symlinks), then wait for the last."""
        for top, dirs, files in os.walk(self.root):
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

    def add_discovered(self) -> None:
        with self._lock:
            self.discovered += 1

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
            "medium.inventory", severity=inventory_severity(self.discovered),
            medium=medium_obj(m.identity, str(m.mountpoint)),
            details={"files": self.files, "bytes": self.bytes, "levels": dict(self.levels),
                     "highest_level": self.highest.id, "uninspectable": self.uninspectable,
                     "marked": sum(n for lvl, n in self.levels.items() if Level.parse(lvl) >= Level.CONFIDENTIAL),
                     "not_read": self.skipped, "medium_class": m.medium_class,
                     "discovered": self.discovered,
                     "duration_s": round(time.monotonic() - self._started, 3)})
        if self.on_done:
            self.on_done(self)


class AtRestFiles:
    """An inventory item: scan a file already on the medium and report what the policy says."""

    def __init__(self, ctx: Any, verdicts: Any, effects: Any, watched: dict[str, Any]):
        self.ctx, self.verdicts, self.effects, self.watched = ctx, verdicts, effects, watched

    def handle(self, item: Any) -> None:
        run: InventoryRun = item.run
        w = self.watched.get(item.medium_key)
        try:
            if w is None or w.gone:
                run.add_skipped()
                return
            try:
                item.fd = os.open(item.path, os.O_RDONLY | os.O_NOFOLLOW)
            except OSError:
                run.add_skipped()
                return
            size = os.fstat(item.fd).st_size
            sha = sha256_fd(item.fd)
            v = self.verdicts.for_content(item.fd, item.path, sha, size)
            run.add(v, size)
            medium, mp = w.medium, str(w.medium.mountpoint)
            cfg = self.ctx.config
            outcome = decide_at_rest(cfg.host.class_, medium.medium_class, v.level,
                                     medium.level_ceiling, cfg.policy.actions)
            self.effects.raise_level(medium, outcome.raise_level_to)
            if outcome.kind is not None:
                run.add_discovered()
                file = file_obj(item.path, mountpoint=run.root, size=size, sha256=sha, verdict=v)
                file["mountpoint"] = mp  # relative to the medium, shown where users know it
                self.ctx.record(outcome.kind, severity=outcome.severity, user=None,
                                medium=medium_obj(medium.identity, mp), file=file,
                                rule=outcome.rule, details={"reason": outcome.reason})
        finally:
            run.item_done()
