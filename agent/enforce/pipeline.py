"""Closed files -> scan (cached by content hash) -> policy -> effect -> record.

Items arrive from the watcher holding an open descriptor of the written file.
Holding it keeps the medium busy, so a clean eject waits for the verdict, and
lets the agent read a file that was renamed or deleted right after the write.
Writes go before inventory work (a priority queue); a few worker threads share
the scanner, whose own worker processes do the extraction.
"""
from __future__ import annotations

import hashlib
import itertools
import logging
import os
import queue
import stat
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from baomi.common.levels import Level
from ..model import MountedMedium
from baomi.common.policy import Decision, file_action
from ..scan.verdict import Evidence, Verdict
from .writer import Writer, owner_writer

log = logging.getLogger(__name__)

WRITE, INVENTORY = 0, 1


class ScannerLike(Protocol):
    def scan_file(self, path: str) -> Verdict: ...


@dataclass
class Item:
    medium_key: str
    priority: int = WRITE
    fd: int | None = None            # writes: the descriptor from fanotify (or opened by inotify)
    path: str | None = None          # inventory: the file to open
    writer: Writer | None = None
    received: float = field(default_factory=time.monotonic)
    run: Any = None                  # inventory: the InventoryRun it belongs to


@dataclass
class Watched:
    medium: MountedMedium
    dev: int
    gone: bool = False


def hash_fd(fd: int) -> str:
    h, off = hashlib.sha256(), 0
    while True:
        block = os.pread(fd, 1024 * 1024, off)
        if not block:
            return h.hexdigest()
        h.update(block)
        off += len(block)


def current_path(fd: int, st: os.stat_result, mountpoint: str, walk_limit: int = 20000) -> str | None:
    """Where the file behind `fd` is now (it may have been renamed), or None if deleted.

    /proc/self/fd gives the name at open time on some FUSE filesystems, so the
    answer is checked by inode, then searched in the same folder, then on the medium."""
    def same(p: str) -> bool:
        try:
            s = os.lstat(p)
        except OSError:
            return False
        return s.st_ino == st.st_ino and s.st_dev == st.st_dev

    try:
        link = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None
    if link.endswith(" (deleted)") and not os.path.exists(link):
        link = link[: -len(" (deleted)")]
    if same(link):
        return link
    if st.st_nlink == 0:
        return None
    folders = [os.path.dirname(link), mountpoint]
    seen = 0
    for top in folders:
        for root, dirs, files in os.walk(top):
            for name in files:
                seen += 1
                p = os.path.join(root, name)
                if same(p):
                    return p
                if seen > walk_limit:
                    return None
            if top != mountpoint:
                break  # only the folder itself, not below
    return None


class VerdictCache:
    """sha256 -> verdict, so unchanged content is never scanned twice."""

    def __init__(self, size: int = 20000):
        self._d: OrderedDict[str, Verdict] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, sha: str) -> Verdict | None:
        with self._lock:
            v = self._d.get(sha)
            if v is None:
                self.misses += 1
                return None
            self._d.move_to_end(sha)
            self.hits += 1
            return v

    def put(self, sha: str, v: Verdict) -> None:
        if not v.inspectable and v.reason in ("timeout", "vanished", "unreadable"):
            return  # transient: try again next time
        with self._lock:
            self._d[sha] = v
            while len(self._d) > self._size:
                self._d.popitem(last=False)


def severity_for(kind: str, action: str, level: Level) -> str:
    if kind == "file.blocked":
        return "high"
    if kind == "file.uninspectable":
        return "medium"
    if action == "notify" or level >= Level.CONFIDENTIAL:
        return "medium"
    return "low" if level > Level.PUBLIC else "info"


class Pipeline:
    def __init__(self, ctx: Any, scanner: ScannerLike, blocker: Any, workers: int = 2,
                 notify: Callable[..., None] | None = None,
                 raise_level: Callable[[str, Level], None] | None = None, nice: int = 0):
        self.ctx = ctx
        self.scanner = scanner
        self.blocker = blocker
        self.notify = notify
        self.raise_level = raise_level
        self.nice = nice
        self.cache = VerdictCache()
        self.watched: dict[str, Watched] = {}
        self._q: queue.PriorityQueue = queue.PriorityQueue()
        self._counter = itertools.count()
        self._inflight = 0
        self._cv = threading.Condition()
        self._threads = [threading.Thread(target=self._work, name=f"baomi-enforce-{i}", daemon=True)
                         for i in range(workers)]
        self.latencies: list[float] = []  # close -> effect done, seconds (for the bench)

    # -- lifecycle --------------------------------------------------------------
    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        for _ in self._threads:
            self._q.put((99, next(self._counter), None))
        for t in self._threads:
            t.join(timeout=10)

    def submit(self, item: Item) -> None:
        with self._cv:
            self._inflight += 1
        self._q.put((item.priority, next(self._counter), item))

    def pending(self) -> int:
        with self._cv:
            return self._inflight

    def wait_idle(self, timeout: float = 60.0) -> bool:
        end = time.monotonic() + timeout
        with self._cv:
            while self._inflight:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cv.wait(left)
        return True

    def _work(self) -> None:
        try:
            # the user's copy comes first; enforcement uses what CPU is left (Linux: per thread)
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self.nice)
        except (OSError, AttributeError):
            pass
        while True:
            _, _, item = self._q.get()
            if item is None:
                return
            try:
                if item.priority == WRITE:
                    self._process_write(item)
                else:
                    self._process_inventory(item)
            except Exception:
                log.exception("enforcement of a file on %s failed", item.medium_key)
            finally:
                if item.fd is not None:
                    try:
                        os.close(item.fd)  # releases the medium for eject
                    except OSError:
                        pass
                with self._cv:
                    self._inflight -= 1
                    self._cv.notify_all()

    # -- classification -----------------------------------------------------
    def classify(self, fd: int, path: str | None, sha: str, size: int) -> Verdict:
        cached = self.cache.get(sha)
        if cached is not None:
            return cached
        # by name first (the scanner may use it); through our own descriptor when the
        # name is gone (renamed, deleted, medium detached): the content is still there
        by_fd = f"/proc/{os.getpid()}/fd/{fd}"
        v = self._scan(path or by_fd, size, sha)
        if path and not v.inspectable and v.reason in ("vanished", "unreadable"):
            v = self._scan(by_fd, size, sha)
        self.cache.put(sha, v)
        return v

    def _scan(self, target: str, size: int, sha: str) -> Verdict:
        try:
            return self.scanner.scan_file(target, sha)
        except Exception as exc:
            log.warning("scanner failed on %s: %s", target, exc)
            return Verdict(path=target, inspectable=False, reason="unreadable", detail=str(exc),
                           size=size, sha256=sha)

    @staticmethod
    def file_json(path: str, mountpoint: str, size: int, sha: str, v: Verdict) -> dict[str, Any]:
        out: dict[str, Any] = {"path": os.path.relpath(path, mountpoint) if path.startswith(mountpoint) else path,
                               "mountpoint": mountpoint, "name": os.path.basename(path), "size": size,
                               "sha256": sha, "type": v.type, "level": v.level.id,
                               "evidence": [e.to_json() if isinstance(e, Evidence) else e for e in v.evidence],
                               "inspectable": v.inspectable}
        if not v.inspectable:
            out["reason"] = v.reason
        return out

    def decide(self, medium: MountedMedium, v: Verdict) -> Decision:
        pol = self.ctx.config.policy
        return file_action(self.ctx.config.host.class_, medium.medium_class, v.level, medium.level_ceiling,
                           v.inspectable, pol.actions, pol.uninspectable)

    # -- a written file -----------------------------------------------------
    def _process_write(self, item: Item) -> None:
        w = self.watched.get(item.medium_key)
        if w is None:
            return
        fd, medium = item.fd, w.medium
        mp = str(medium.mountpoint)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return
        path = current_path(fd, st, mp)
        shown = path or os.readlink(f"/proc/self/fd/{fd}").removesuffix(" (deleted)")
        try:
            sha = hash_fd(fd)
            size = os.fstat(fd).st_size
            v = self.classify(fd, path, sha, size)
        except OSError as exc:  # the medium went away under us
            self._unfinished(item, w, shown, f"{type(exc).__name__}: {exc}")
            return
        decision = self.decide(medium, v)
        writer = item.writer or owner_writer(st)
        if writer.uid is None:  # the process exited before it could be looked at
            owner = owner_writer(st)
            writer.uid, writer.name = owner.uid, owner.name
        fields = {"user": writer.user_json(), "process": writer.process_json(),
                  "medium": dict(medium.identity, mountpoint=mp),
                  "file": self.file_json(shown, mp, size, sha, v), "rule": decision.rule,
                  "details": {"reason": decision.reason}}
        if medium.medium_class == "registered" and v.level > Level.PUBLIC and self.raise_level:
            self.raise_level(medium.registry_id or medium.key, v.level)
        if w.gone or not os.path.ismount(mp):
            self._unfinished(item, w, shown, "medium removed before the verdict was applied",
                             fields=fields, decision=decision)
            return
        if path is None:
            fields["details"]["deleted_before_verdict"] = True
            self.ctx.record("file.copied", severity=severity_for("file.copied", decision.action, v.level),
                            action=decision.action, **fields)
            return
        if decision.action == "block":
            with os.fdopen(os.dup(fd), "rb") as src:
                self.blocker.block(src=src, path=path, mountpoint=mp, medium_key=medium.key, sha256=sha,
                                   size=size, level=v.level.id, fields=fields)
        else:
            kind = "file.copied" if v.inspectable else "file.uninspectable"
            self.ctx.record(kind, severity=severity_for(kind, decision.action, v.level),
                            action=decision.action, **fields)
        self.latencies.append(time.monotonic() - item.received)
        if decision.action in ("block", "notify") and self.notify and writer.uid is not None:
            self.notify(writer, decision, v, os.path.basename(path))

    def _unfinished(self, item: Item, w: Watched, shown: str, why: str,
                    fields: dict[str, Any] | None = None, decision: Decision | None = None) -> None:
        medium = w.medium
        fields = fields or {"medium": dict(medium.identity, mountpoint=str(medium.mountpoint)),
                            "file": {"path": os.path.relpath(shown, str(medium.mountpoint)), "name": os.path.basename(shown)}}
        details = dict(fields.get("details") or {}, unfinished=why,
                       would_have_been=decision.action if decision else None)
        level = Level.parse((fields.get("file") or {}).get("level", "public"))
        self.ctx.record("scan.unfinished", severity="high" if level >= Level.CONFIDENTIAL or decision is None else "medium",
                        action=None, rule=decision.rule if decision else None,
                        **{k: v for k, v in fields.items() if k not in ("details", "rule")}, details=details)

    # -- a file already on the medium (inventory) ----------------------------
    def _process_inventory(self, item: Item) -> None:
        run = item.run
        w = self.watched.get(item.medium_key)
        try:
            if w is None or w.gone:
                run.add_skipped()
                return
            try:
                fd = os.open(item.path, os.O_RDONLY | os.O_NOFOLLOW)
            except OSError:
                run.add_skipped()
                return
            item.fd = fd
            st = os.fstat(fd)
            sha = hash_fd(fd)
            v = self.classify(fd, item.path, sha, st.st_size)
            run.add(v, st.st_size)
            medium, mp = w.medium, str(w.medium.mountpoint)
            if medium.medium_class == "registered" and v.level > Level.PUBLIC and self.raise_level:
                self.raise_level(medium.registry_id or medium.key, v.level)
            if medium.medium_class == "personal" and v.level >= Level.CONFIDENTIAL:
                self.ctx.record("file.discovered", severity="high", user=None,
                                medium=dict(medium.identity, mountpoint=mp),
                                file=self.file_json(item.path, mp, st.st_size, sha, v),
                                rule=f"{self.ctx.config.host.class_}.personal.{v.level.id}",
                                details={"reason": "marked file already on a personal medium"})
        finally:
            run.item_done()
