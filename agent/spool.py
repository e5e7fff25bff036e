"""The durable local event spool: SQLite in WAL mode with full sync.

Every event is committed here, with its sequence number and hash chain,
before the action it records is reported. The uploader reads unsent events in
order and marks them acknowledged once the collector has stored them; only
acknowledged rows are ever deleted by normal pruning.
"""
from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any, Iterator

from . import events as ev

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


class Spool:
    def __init__(self, path: Path, agent_id: str, host: dict[str, Any] | None = None):
        self.path = Path(path)
        self.agent_id = agent_id
        self.host = host
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(self.path), timeout=30, isolation_level=None,
                                   check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- writing -----------------------------------------------------------
    def _meta(self, key: str, default: str = "") -> str:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else default

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT INTO meta(key,value) VALUES(?,?) "
                         "ON CONFLICT(key) DO UPDATE SET value=excluded.value", (key, value))

    def append(self, event: dict[str, Any]) -> dict[str, Any]:
        """Assign seq and chain, commit durably, and return the stored event."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                seq = int(self._meta("last_seq", "0")) + 1
                prev = self._meta("last_hash", "")
                stored = {f: event.get(f) for f in ev.FIELDS if f not in ("seq", "agent_id", "prev_hash", "hash")}
                stored["details"] = stored.get("details") or {}
                if stored.get("host") is None:
                    stored["host"] = self.host
                stored.update(seq=seq, agent_id=self.agent_id, prev_hash=prev)
                stored["hash"] = ev.event_hash(stored)
                self._db.execute(
                    "INSERT INTO events(seq,kind,severity,security,time,body) VALUES(?,?,?,?,?,?)",
                    (seq, stored["kind"], stored["severity"],
                     int(ev.is_security(stored["kind"], stored["severity"])),
                     stored["time"], json.dumps(stored, ensure_ascii=False)))
                self._set_meta("last_seq", str(seq))
                self._set_meta("last_hash", stored["hash"])
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return stored

    def record(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Build and append an event in one call (see events.make_event for fields)."""
        return self.append(ev.make_event(kind, **fields))

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

    def unacked(self, limit: int = 500) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT body FROM events WHERE acked=0 ORDER BY seq LIMIT ?",
                                    (limit,)).fetchall()
        return [json.loads(b) for (b,) in rows]

    def ack(self, upto_seq: int) -> int:
        """Mark events up to `upto_seq` as durably stored by the collector."""
        with self._lock:
            cur = self._db.execute("UPDATE events SET acked=1 WHERE acked=0 AND seq<=?", (upto_seq,))
            return cur.rowcount

    def depth(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM events WHERE acked=0").fetchone()[0]

    def oldest_unacked_time(self) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT time FROM events WHERE acked=0 ORDER BY seq LIMIT 1").fetchone()
        return row[0] if row else None


def open_spool(state_dir: Path, agent_id: str, host: dict[str, Any] | None = None) -> Spool:
    return Spool(Path(state_dir) / "spool.db", agent_id, host)
