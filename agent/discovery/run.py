"""One discovery pass: walk the configured paths, read again only what changed since the last
pass (index.py), scan it with the content engine, and record what is found and what is resolved
(decide/discovery.py). A pass interrupted half-way does not resolve anything: a file it did not
reach is not gone."""
from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import pwd
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from baomi.common.events import file_obj, user_obj, utcnow
from baomi.common.levels import Level

from ..config import AgentConfig
from ..decide.discovery import RULE, change, pause_s
from .index import Entry, Index
from .walk import regular_files

log = logging.getLogger("baomi.agent.discovery")
Record = Callable[..., Any]
# the index is committed in batches, after the events it stands for: a crash in between repeats a
# report on the next pass rather than losing one
COMMIT_EVERY = 500


class Busy(RuntimeError):
    """Another pass (the daemon's, or `discover --now`) holds the index."""


@dataclass
class PassStats:
    number: int = 0
    files: int = 0
    bytes: int = 0
    scanned: int = 0        # sent to the content engine
    hashed: int = 0         # metadata changed: content hashed to see whether it did too
    found: int = 0
    resolved: int = 0
    complete: bool = False
    busy_s: float = 0.0     # time spent reading and scanning (the throttle keeps it at cpu_share)


def _hash(path: str) -> str | None:
    h = hashlib.sha256()
    try:
        with open(path, "rb", buffering=0) as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return None
    return h.hexdigest()


def _owner(uid: int) -> dict[str, Any] | None:
    try:
        return user_obj(uid, pwd.getpwuid(uid).pw_name)
    except KeyError:
        return user_obj(uid)


class Discovery:
    def __init__(self, config: AgentConfig, record: Record, scanner: Any,
                 sleep: Callable[[float], Any] = time.sleep, pauser: Any = None) -> None:
        self.cfg = config.discovery
        self.pauser = pauser  # polite.Pauser: waits between files while the battery is low or a user types
        self.state_dir = config.state_dir
        self.record = record
        self.scanner = scanner
        self.sleep = sleep
        # the agent's own state (quarantined copies among it) is never a finding
        self.exclude = [*self.cfg.exclude, str(config.state_dir), str(config.state_dir) + "/*"]

    def run_pass(self, progress: Callable[[PassStats, int], None] | None = None,
                 stop: threading.Event | None = None) -> PassStats:
        """progress(stats, bytes_just_done) after each file."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.state_dir / "discovery.lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise Busy("a discovery pass is already running") from None
            index = Index(self.state_dir)
            try:
                return self._pass(index, progress, stop)
            finally:
                index.close()

    def _pass(self, index: Index, progress: Callable[[PassStats, int], None] | None,
              stop: threading.Event | None) -> PassStats:
        s = PassStats(number=int(index.meta("passes", "0") or 0) + 1)
        jobs = max(1, getattr(self.scanner, "jobs", 1))
        with ThreadPoolExecutor(jobs, thread_name_prefix="baomi-discovery") as pool:
            # workers only scan; the index and the records are touched from this thread alone
            pending: dict[Future[tuple[Any, float]], tuple[str, os.stat_result, Entry | None, str | None]] = {}
            for path, st in regular_files(self.cfg.paths, self.exclude):
                if self.pauser is not None:
                    self.pauser.wait(stop)
                if stop is not None and stop.is_set():
                    break
                s.files += 1
                s.bytes += st.st_size
                todo = self._triage(index, s, path, st)
                if todo is not None:
                    pending[pool.submit(self._scan, path, todo[1])] = (path, st, *todo)
                    if len(pending) >= jobs * 2:
                        done, _ = wait(pending, return_when=FIRST_COMPLETED)
                        for fut in done:
                            self._apply(index, s, *pending.pop(fut), *fut.result())
                if progress:
                    progress(s, st.st_size)
                if s.files % COMMIT_EVERY == 0:
                    index.commit()
            for fut in list(pending):
                self._apply(index, s, *pending.pop(fut), *fut.result())
        if stop is None or not stop.is_set():
            self._resolve_missing(index, s)
            s.complete = True
            index.set_meta("passes", str(s.number))
            index.set_meta("last_pass", str(time.time()))
            summary = {"pass": s.number, "files": s.files, "bytes": s.bytes, "scanned": s.scanned,
                       "hashed": s.hashed, "found": s.found, "resolved": s.resolved,
                       "paths": [str(p) for p in self.cfg.paths], "time": utcnow(),
                       "at_rest": at_rest_counts(index),
                       # how often the pass waited, and for how long (none when nothing asks it to)
                       "pauses": self.pauser.summary() if self.pauser is not None
                       else {"battery": 0, "typing": 0, "seconds": 0.0}}
            index.set_meta("last_summary", json.dumps(summary, ensure_ascii=False))
            index.commit()
            self.record("discovery.finished", details=summary)
        index.commit()
        return s

    def _triage(self, index: Index, s: PassStats, path: str, st: os.stat_result
                ) -> tuple[Entry | None, str | None] | None:
        """None when the file need not be scanned; else (what is on record, its hash if known)."""
        old = index.get(path)
        if old is not None and old.same_stat(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns):
            index.mark_seen(path, s.number)
            return None
        if old is None or old.sha256 is None:
            return old, None
        t = time.monotonic()
        sha = _hash(path)
        self._rest(s, time.monotonic() - t)
        s.hashed += 1
        if sha is not None and sha == old.sha256:  # touched, copied back, restored: same content
            index.put(Entry(path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, sha, old.level, old.evidence),
                      s.number)
            return None
        return old, sha

    def _scan(self, path: str, sha: str | None) -> tuple[Any, float]:
        """In a pool thread: the verdict, then a rest that keeps this worker at cpu_share."""
        t = time.monotonic()
        v = self.scanner.scan_file(path, sha)
        busy = time.monotonic() - t
        pause = pause_s(busy, self.cfg.cpu_share)
        if pause > 0:
            self.sleep(pause)
        return v, busy

    def _apply(self, index: Index, s: PassStats, path: str, st: os.stat_result, old: Entry | None,
               sha: str | None, v: Any, busy_s: float) -> None:
        s.busy_s += busy_s
        s.scanned += 1
        # not read to the end: what was read counts when it carries a marking, else keep the record
        level = v.level if v.inspectable or v.level > Level.PUBLIC else None
        if not v.inspectable and v.reason == "vanished":
            return  # gone before it was read: the next pass resolves it if it was on record
        evidence = json.dumps([e.to_json() for e in v.evidence], ensure_ascii=False, sort_keys=True)
        c = change(old.level if old else None, level)
        if c.kind == "file.found_at_rest":
            s.found += 1
            self._found(path, st, v, c.severity, c.reason)
        elif c.kind == "file.at_rest_resolved":
            s.resolved += 1
            self._resolved(path, old, c.reason, v.sha256)  # type: ignore[arg-type]
        keep = level if level is not None else (old.level if old else None)
        index.put(Entry(path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, v.sha256 or sha, keep,
                        evidence if level is not None else (old.evidence if old else "[]")), s.number)

    def _resolve_missing(self, index: Index, s: PassStats) -> None:
        for old in list(index.not_seen(s.number)):
            c = change(old.level, None, present=False)
            if c.kind:
                s.resolved += 1
                self._resolved(old.path, old, c.reason, None)
            index.forget(old.path)

    def _found(self, path: str, st: os.stat_result, v: Any, severity: str, reason: str) -> None:
        owner = _owner(st.st_uid)
        mtime = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(st.st_mtime))
        self.record("file.found_at_rest", severity=severity, user=owner, action="audit", rule=RULE,
                    file=file_obj(path, size=v.size, sha256=v.sha256, verdict=v, owner=owner, mtime=mtime),
                    details={"path": path, "level": v.level.id, "reason": reason, "owner": owner, "mtime": mtime,
                             "evidence": [e.to_json() for e in v.evidence]})

    def _resolved(self, path: str, old: Entry, reason: str, sha: str | None) -> None:
        self.record("file.at_rest_resolved", action="audit", rule=RULE,
                    file=file_obj(path, sha256=sha or old.sha256, level=old.level.id if old.level else None),
                    details={"path": path, "reason": reason, "was_level": old.level.id if old.level else None})

    def _rest(self, s: PassStats, busy_s: float) -> None:
        s.busy_s += busy_s
        pause = pause_s(busy_s, self.cfg.cpu_share)
        if pause > 0:
            self.sleep(pause)


def at_rest_counts(index: Index) -> dict[str, int]:
    """What is held on record now, by level from internal up (the console's per-host counts):
    every level present, zeros included, so a host that holds nothing says so."""
    counts = index.counts()
    return {lvl.id: counts.get(lvl.id, 0) for lvl in Level if lvl >= Level.INTERNAL}


def found_by_level(state_dir: Path) -> dict[str, list[str]]:
    """Paths on record at each classified level (for `baomi-agent check`); empty before any pass."""
    from ..decide.discovery import CLASSIFIED_FROM
    if not (state_dir / Index.FILE).exists():
        return {}
    index = Index(state_dir)
    try:
        out: dict[str, list[str]] = {}
        for e in index.found(CLASSIFIED_FROM):
            out.setdefault(e.level.id, []).append(e.path)  # type: ignore[union-attr]
        return out
    finally:
        index.close()


def last_pass(state_dir: Path) -> dict[str, Any] | None:
    """The last complete pass's counts and time (kept in the index: the spool may drop them)."""
    if not (state_dir / Index.FILE).exists():
        return None
    index = Index(state_dir)
    try:
        value = index.meta("last_summary")
    finally:
        index.close()
    return json.loads(value) if value else None


__all__ = ["Busy", "Discovery", "PassStats", "at_rest_counts", "found_by_level", "last_pass"]
