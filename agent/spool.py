"""The durable local event spool: SQLite in WAL mode with full sync.

Every event is committed here, with its sequence number and hash chain,
before the action it records is reported. The uploader reads unsent events in
order and marks them acknowledged once the collector has stored them; only
acknowledged rows are ever deleted by normal pruning.

Two pressures can force the spool to lose something, and both leave a trace:

- the size cap (`[spool] max_bytes`): acknowledged rows go first, then
  low-value telemetry (heartbeats and other non-security "info" events such
  as audit records of public files), oldest first; each contiguous run of dropped sequence numbers is announced
  by an `agent.gap` event (reason "spool_full"). Security events are never
  dropped for the cap: when only they remain the spool grows past it and says
  so once with an `agent.spool_over_cap` event.
- a full filesystem: `record()` never raises into the component that calls
  it. Security events wait in a bounded in-memory queue (with their sequence
  numbers and chain already assigned) and are written when space returns;
  anything else is dropped and announced by an `agent.gap` (reason
  "disk_full").
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import sqlite3
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable, Iterator

from baomi.common import events as ev
from baomi.common.catalogue import ANNOUNCES_DROPS
from baomi.common.fsutil import private_dir

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq      INTEGER PRIMARY KEY,
    kind     TEXT NOT NULL,
    severity TEXT NOT NULL,
    security INTEGER NOT NULL,
    acked    INTEGER NOT NULL DEFAULT 0,
    time     TEXT NOT NULL,
    body     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_unacked ON events(acked, seq);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

DEFAULT_MAX_BYTES = 512 * 1024 * 1024
DEFAULT_OVERFLOW = 10_000
# after a drop the spool goes down to this fraction of the cap, so it does not drop on every append
LOW_WATER = 0.9


def _disk_full(exc: BaseException) -> bool:
    """SQLITE_FULL, or the I/O error SQLite reports when the WAL cannot grow."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    msg = str(exc).lower()
    return "full" in msg or "disk i/o" in msg


class Spool:
    def __init__(self, path: Path, agent_id: str, host: dict[str, Any] | None = None,
                 max_bytes: int = DEFAULT_MAX_BYTES, overflow_limit: int = DEFAULT_OVERFLOW):
        self.path = Path(path)
        self.agent_id = agent_id
        self.host = host
        self.max_bytes = max_bytes
        self.overflow_limit = overflow_limit
        private_dir(self.path.parent)
        self._lock = threading.RLock()
        self._db = self._open_schema()
        # set on every committed append; the uploader waits on it instead of polling
        self.appended = threading.Event()
        self.listeners: list[Callable[[dict[str, Any]], None]] = []
        # full-disk state: events with seq/chain assigned, not yet written
        self._overflow: deque[dict[str, Any]] = deque()
        self._lost: list[int] = []  # seqs consumed by events lost to a full disk
        self._mem_seq = 0
        self._mem_hash = ""
        self._next_retry = 0.0
        self._over_cap_warned = False
        self._bytes: int | None = None  # running total of body bytes; None = count again

    def _open_schema(self, attempts: int = 50) -> sqlite3.Connection:
        # A reader (`baomi-agent events`) opening a brand-new spool at the same moment as the
        # daemon can make SQLite answer "locked" at once, without its busy handler (the
        # deadlock-avoidance path of a lock upgrade); try again rather than fail the start.
        for attempt in range(attempts):
            db = None
            try:
                db = self._connect()
                db.executescript(SCHEMA)
                return db
            except sqlite3.OperationalError as exc:
                if db is not None:
                    db.close()
                if "locked" not in str(exc) and "busy" not in str(exc) or attempt == attempts - 1:
                    raise
                time.sleep(0.1)
        raise AssertionError("unreachable")

    def _connect(self) -> sqlite3.Connection:
        # SQLite creates the file and its -wal/-shm with the process umask: create them first,
        # root-only, so a umask of 022 never leaves events world-readable
        for suffix in ("", "-wal", "-shm"):
            fd = os.open(f"{self.path}{suffix}", os.O_RDWR | os.O_CREAT, 0o600)
            os.fchmod(fd, 0o600)
            os.close(fd)
        db = sqlite3.connect(str(self.path), timeout=30, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        return db

    def close(self) -> None:
        with self._lock:
            try:
                self.flush_overflow()
            except Exception:  # closing must not fail because the disk is still full
                log.warning("spool closed with %d event(s) still unwritten (disk full)", len(self._overflow))
            self._db.close()

    # -- meta --------------------------------------------------------------
    def _meta(self, key: str, default: str = "") -> str:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else default

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT INTO meta(key,value) VALUES(?,?) "
                         "ON CONFLICT(key) DO UPDATE SET value=excluded.value", (key, value))

    def get_meta(self, key: str, default: str = "") -> str:
        """Persistent agent state kept beside the events (batch counter, enrollment)."""
        with self._lock:
            return self._meta(key, default)

    def set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._set_meta(key, value)

    # -- writing -----------------------------------------------------------
    def _chain(self, event: dict[str, Any], seq: int, prev: str) -> dict[str, Any]:
        stored = {f: event.get(f) for f in ev.FIELDS if f not in ("seq", "agent_id", "prev_hash", "hash")}
        stored["details"] = stored.get("details") or {}
        if stored.get("host") is None:
            stored["host"] = self.host
        stored.update(seq=seq, agent_id=self.agent_id, prev_hash=prev)
        stored["hash"] = ev.event_hash(stored)
        return stored

    def _insert(self, stored: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT INTO events(seq,kind,severity,security,time,body) VALUES(?,?,?,?,?,?)",
            (stored["seq"], stored["kind"], stored["severity"],
             int(ev.is_security(stored["kind"], stored["severity"])),
             stored["time"], json.dumps(stored, ensure_ascii=False)))

    def _commit_one(self, event: dict[str, Any]) -> dict[str, Any]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            seq = int(self._meta("last_seq", "0")) + 1
            stored = self._chain(event, seq, self._meta("last_hash", ""))
            self._insert(stored)
            self._set_meta("last_seq", str(seq))
            self._set_meta("last_hash", stored["hash"])
            self._db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        return stored

    def _rollback(self) -> None:
        try:
            self._db.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    def append(self, event: dict[str, Any]) -> dict[str, Any]:
        """Assign seq and chain, commit durably, and return the stored event.

        On a full disk the event is held in memory (security events) or
        counted as lost (telemetry) and the call still returns normally."""
        with self._lock:
            if self._overflow or self._lost:
                self.flush_overflow(force=False)
            if not (self._overflow or self._lost):
                try:
                    stored = self._commit_one(event)
                except sqlite3.OperationalError as exc:
                    if not _disk_full(exc):
                        raise
                    log.error("spool %s: %s; holding security events in memory", self.path, exc)
                    self._enter_overflow()
                    stored = self._hold(event)
                else:
                    self._after_commit(stored)
            else:
                stored = self._hold(event)
        self._notify(stored)
        return stored

    def record(self, kind: str, **fields: Any) -> dict[str, Any]:
        """The one way to record: build the event (its kind must be in the catalogue), commit it
        durably and return it as stored. The spool fills in the host. See events.make_event."""
        return self.append(ev.make_event(kind, **fields))

    def last_seq(self) -> int:
        """The highest sequence number committed to disk so far."""
        with self._lock:
            return int(self._meta("last_seq", "0"))

    def _notify(self, stored: dict[str, Any]) -> None:
        self.appended.set()
        for fn in list(self.listeners):
            try:
                fn(stored)
            except Exception:
                log.exception("spool listener failed")

    # -- full disk ---------------------------------------------------------
    def _enter_overflow(self) -> None:
        self._rollback()
        try:
            self._mem_seq = int(self._meta("last_seq", "0"))
            self._mem_hash = self._meta("last_hash", "")
        except sqlite3.Error:  # the connection itself is unusable: reopen to read
            self._db.close()
            self._db = self._connect()
            self._mem_seq = int(self._meta("last_seq", "0"))
            self._mem_hash = self._meta("last_hash", "")
        self._next_retry = time.monotonic() + 1.0

    def _hold(self, event: dict[str, Any]) -> dict[str, Any]:
        self._mem_seq += 1
        stored = self._chain(event, self._mem_seq, self._mem_hash)
        self._mem_hash = stored["hash"]
        keep = ev.is_security(stored["kind"], stored["severity"]) and len(self._overflow) < self.overflow_limit
        if keep:
            self._overflow.append(stored)
        else:
            self._lost.append(stored["seq"])
        return stored

    @property
    def overflowing(self) -> bool:
        """True while events are held in memory because the disk is full."""
        return bool(self._overflow or self._lost)

    def flush_overflow(self, force: bool = True) -> bool:
        """Write held events and the gap record for lost ones; True when nothing is left held.

        Without force, tries at most once a second (called on every append)."""
        with self._lock:
            if not (self._overflow or self._lost):
                return True
            now = time.monotonic()
            if not force and now < self._next_retry:
                return False
            self._next_retry = now + 1.0
            try:
                self._db.execute("BEGIN IMMEDIATE")
                for stored in self._overflow:
                    self._insert(stored)
                last_seq, last_hash = self._mem_seq, self._mem_hash
                for gap in self._gap_events(self._lost, "disk_full", last_seq, last_hash):
                    self._insert(gap)
                    last_seq, last_hash = gap["seq"], gap["hash"]
                self._set_meta("last_seq", str(last_seq))
                self._set_meta("last_hash", last_hash)
                self._db.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                self._rollback()
                if not _disk_full(exc):
                    raise
                return False
            log.warning("spool %s writable again: %d held event(s) written, %d lost and announced",
                         self.path, len(self._overflow), len(self._lost))
            self._overflow.clear()
            self._lost.clear()
            self._bytes = None
        self.appended.set()
        return True

    def _gap_events(self, seqs: list[int], reason: str, last_seq: int, last_hash: str) -> list[dict[str, Any]]:
        """One agent.gap per contiguous run of dropped seqs, chained after (last_seq, last_hash)."""
        out = []
        for first, last in _runs(sorted(seqs)):
            event = ev.make_event("agent.gap", severity="medium", details={
                "first_seq": first, "last_seq": last, "count": last - first + 1, "reason": reason})
            last_seq += 1
            stored = self._chain(event, last_seq, last_hash)
            last_hash = stored["hash"]
            out.append(stored)
        return out

    # -- size cap ----------------------------------------------------------
    def used_bytes(self) -> int:
        """Bytes of event JSON the spool holds (what the cap is measured in)."""
        with self._lock:
            if self._bytes is None:
                self._bytes = self._db.execute("SELECT COALESCE(SUM(length(body)),0) FROM events").fetchone()[0]
            return self._bytes

    def _after_commit(self, stored: dict[str, Any]) -> None:
        if self._bytes is not None:
            self._bytes += len(json.dumps(stored, ensure_ascii=False))
        self._cap_if_over()

    def _cap_if_over(self) -> None:
        if self.used_bytes() > self.max_bytes:
            try:
                self.enforce_cap()
            except sqlite3.OperationalError as exc:
                if not _disk_full(exc):
                    raise
                self._rollback()

    def enforce_cap(self) -> int:
        """Bring the spool under its cap; returns how many unsent events were dropped."""
        target = int(self.max_bytes * LOW_WATER)
        dropped: list[int] = []
        steps = [  # (query, its arguments, are these rows unsent?)
            ("SELECT seq, length(body) FROM events WHERE acked=1 ORDER BY seq LIMIT 1000", (), False),
            # heartbeats and routine audit records are one class, dropped oldest first, so the
            # dropped seqs form long runs (one gap record each) between the kept security events
            ("SELECT seq, length(body) FROM events WHERE acked=0 AND security=0 AND severity='info' "
             "ORDER BY seq LIMIT 1000", (), True),
        ]
        with self._lock:
            for sql, args, unsent in steps:
                while self.used_bytes() > target:
                    rows = self._db.execute(sql, args).fetchall()
                    if not rows:
                        break
                    seqs, freed = [], 0
                    for seq, size in rows:
                        seqs.append(seq)
                        freed += size
                        if self.used_bytes() - freed <= target:
                            break
                    self._db.execute("BEGIN IMMEDIATE")
                    try:
                        self._db.executemany("DELETE FROM events WHERE seq=?", [(q,) for q in seqs])
                        if unsent:
                            self._append_gaps(seqs, "spool_full")
                        self._db.execute("COMMIT")
                    except BaseException:
                        self._rollback()
                        raise
                    self._bytes = None  # recount: deleted rows out, gap records in
                    if unsent:
                        dropped += seqs
            over = self.used_bytes() > self.max_bytes
            if over and not self._over_cap_warned:
                self._over_cap_warned = True
                self._commit_one(ev.make_event("agent.spool_over_cap", severity="high", details={
                    "max_bytes": self.max_bytes, "used_bytes": self.used_bytes(),
                    "unsent": self.depth(),
                    "reason": "only security events remain; they are kept over the cap"}))
                self._bytes = None
            elif not over:
                self._over_cap_warned = False
        if dropped:
            log.warning("spool over %d bytes: dropped %d low-value event(s)", self.max_bytes, len(dropped))
        return len(dropped)

    def _append_gaps(self, seqs: list[int], reason: str) -> None:
        last_seq, last_hash = int(self._meta("last_seq", "0")), self._meta("last_hash", "")
        for gap in self._gap_events(seqs, reason, last_seq, last_hash):
            self._insert(gap)
            last_seq, last_hash = gap["seq"], gap["hash"]
        self._set_meta("last_seq", str(last_seq))
        self._set_meta("last_hash", last_hash)

    def housekeep(self, acked_retention_s: float) -> None:
        """Periodic upkeep, in one place: write what a full disk held back, drop acknowledged
        events past their retention, and bring the spool under its cap."""
        self.flush_overflow()
        cutoff = _dt.datetime.now(_dt.timezone.utc) - _dt.timedelta(seconds=acked_retention_s)
        self.prune_acked(cutoff.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
        with self._lock:
            self._cap_if_over()

    def prune_acked(self, older_than: str) -> int:
        """Delete acknowledged events recorded before the ISO time `older_than`."""
        with self._lock:
            try:
                cur = self._db.execute("DELETE FROM events WHERE acked=1 AND time < ?", (older_than,))
                if cur.rowcount:
                    self._bytes = None
            except sqlite3.OperationalError as exc:
                if not _disk_full(exc):
                    raise
                return 0
            return cur.rowcount

    # -- reading -----------------------------------------------------------
    def iter_events(self, since_seq: int = 0, kind: str | None = None) -> Iterator[dict[str, Any]]:
        with self._lock:
            sql = "SELECT body FROM events WHERE seq > ?"
            args: list[Any] = [since_seq]
            if kind:
                sql += " AND (kind = ? OR kind LIKE ?)"
                args += [kind, kind.rstrip(".") + ".%"]
            rows = self._db.execute(sql + " ORDER BY seq", args).fetchall()
        for (body,) in rows:
            yield json.loads(body)

    def latest_blocked(self, sha256: str, uid: int) -> dict[str, Any] | None:
        """The newest file.blocked event of this content by this user still in the spool
        (acknowledged events stay for the retention period): what an approval request names."""
        with self._lock:
            row = self._db.execute(
                "SELECT body FROM events WHERE kind = 'file.blocked' AND json_extract(body, '$.file.sha256') = ?"
                " AND json_extract(body, '$.user.uid') = ? ORDER BY seq DESC LIMIT 1", (sha256, uid)).fetchone()
        return json.loads(row[0]) if row else None

    def unacked(self, limit: int = 500, max_bytes: int | None = None, after: int = 0) -> list[dict[str, Any]]:
        """Unsent events with seq > `after` in seq order: at most `limit`, and (after the first)
        at most `max_bytes` of JSON."""
        with self._lock:
            rows = self._db.execute("SELECT body FROM events WHERE acked=0 AND seq>? ORDER BY seq LIMIT ?",
                                    (after, limit)).fetchall()
        out, total = [], 0
        for (body,) in rows:
            total += len(body.encode("utf-8")) + 1
            if max_bytes is not None and out and total > max_bytes:
                break
            out.append(json.loads(body))
        return out

    def pending_gaps(self, covering_upto: int | None = None) -> list[dict[str, Any]]:
        """Unsent agent.gap events (the uploader sends them along with the range they cover);
        with `covering_upto`, only those recorded after it announcing a range starting at or before it."""
        sql = ("SELECT body FROM events WHERE acked=0 AND kind IN ("
               + ",".join(f"'{k}'" for k in ANNOUNCES_DROPS) + ")")
        args: tuple[Any, ...] = ()
        if covering_upto is not None:
            sql += " AND seq > ? AND json_extract(body, '$.details.first_seq') <= ?"
            args = (covering_upto, covering_upto)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY seq", args).fetchall()
        return [json.loads(b) for (b,) in rows]

    def ack(self, upto_seq: int) -> int:
        """Mark events up to `upto_seq` as durably stored by the collector."""
        with self._lock:
            try:
                cur = self._db.execute("UPDATE events SET acked=1 WHERE acked=0 AND seq<=?", (upto_seq,))
                if upto_seq > int(self._meta("acked_seq", "0")):
                    self._set_meta("acked_seq", str(upto_seq))
            except sqlite3.OperationalError as exc:
                if not _disk_full(exc):
                    raise
                return 0  # acked again after the next batch; duplicates are ignored by the collector
            return cur.rowcount

    def reject(self, seq: int, status: int, error: str) -> dict[str, Any] | None:
        """The collector refused event `seq` itself (invalid, too large): set it aside so the rest
        flows, and record a delivery.rejected naming it, which announces the hole to the collector."""
        with self._lock:
            row = self._db.execute("SELECT body FROM events WHERE seq=? AND acked=0", (seq,)).fetchone()
            if row is None:
                return None
            bad = json.loads(row[0])
            self._db.execute("UPDATE events SET acked=2 WHERE seq=?", (seq,))  # 2: refused, never resent
        return self.record("delivery.rejected", details={
            "first_seq": seq, "last_seq": seq, "count": 1, "reason": "rejected", "status": status,
            "error": error[:500], "event_id": bad.get("id"), "event_kind": bad.get("kind"),
            "event_hash": bad.get("hash")})

    def depth(self) -> int:
        with self._lock:
            n = self._db.execute("SELECT COUNT(*) FROM events WHERE acked=0").fetchone()[0]
        return n + len(self._overflow)

    def oldest_unacked_time(self) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT time FROM events WHERE acked=0 ORDER BY seq LIMIT 1").fetchone()
        if row:
            return row[0]
        return self._overflow[0]["time"] if self._overflow else None


def _runs(seqs: list[int]) -> Iterator[tuple[int, int]]:
    """Contiguous runs of sorted integers: [1,2,3,7,8] → (1,3), (7,8)."""
    start = prev = None
    for s in seqs:
        if start is None:
            start = prev = s
        elif s == prev + 1:
            prev = s
        else:
            yield start, prev
            start = prev = s
    if start is not None:
        yield start, prev


def open_spool(state_dir: Path, agent_id: str, host: dict[str, Any] | None = None,
               max_bytes: int = DEFAULT_MAX_BYTES, overflow_limit: int = DEFAULT_OVERFLOW) -> Spool:
    return Spool(Path(state_dir) / "spool.db", agent_id, host, max_bytes=max_bytes,
                 overflow_limit=overflow_limit)
