"""What discovery knows about each file after a pass: state_dir/discovery.db (SQLite).

A file whose (device, inode, size, mtime) is unchanged is not read again; one whose metadata
changed but whose content hash is the same is not scanned again. The level on record is the one
that was last reported, so the next pass can tell found from resolved."""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from baomi.common.levels import Level

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, dev INTEGER, ino INTEGER, size INTEGER, mtime_ns INTEGER,
    sha256 TEXT, level TEXT, evidence TEXT, seen INTEGER);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""


@dataclass(frozen=True)
class Entry:
    path: str
    dev: int
    ino: int
    size: int
    mtime_ns: int
    sha256: str | None
    level: Level | None     # None: never inspected successfully
    evidence: str = "[]"    # JSON, as last reported

    def same_stat(self, dev: int, ino: int, size: int, mtime_ns: int) -> bool:
        return (self.dev, self.ino, self.size, self.mtime_ns) == (dev, ino, size, mtime_ns)


class Index:
    FILE = "discovery.db"

    def __init__(self, state_dir: Path | str) -> None:
        Path(state_dir).mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(Path(state_dir) / self.FILE, check_same_thread=False)
        self.db.executescript(SCHEMA)
        self.db.execute("PRAGMA journal_mode=WAL")

    def close(self) -> None:
        self.db.close()

    def get(self, path: str) -> Entry | None:
        row = self.db.execute("SELECT path, dev, ino, size, mtime_ns, sha256, level, evidence FROM files "
                              "WHERE path = ?", (path,)).fetchone()
        return _entry(row) if row else None

    def put(self, e: Entry, seen: int) -> None:
        self.db.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (e.path, e.dev, e.ino, e.size, e.mtime_ns, e.sha256,
                         e.level.id if e.level is not None else None, e.evidence, seen))

    def mark_seen(self, path: str, seen: int) -> None:
        self.db.execute("UPDATE files SET seen = ? WHERE path = ?", (seen, path))

    def not_seen(self, seen: int) -> Iterator[Entry]:
        """Files on record that this pass (number `seen`) did not meet: removed, or now excluded."""
        rows = self.db.execute("SELECT path, dev, ino, size, mtime_ns, sha256, level, evidence FROM files "
                               "WHERE seen != ?", (seen,)).fetchall()
        return (_entry(r) for r in rows)

    def forget(self, path: str) -> None:
        self.db.execute("DELETE FROM files WHERE path = ?", (path,))

    def counts(self) -> dict[str, int]:
        """Files on record per level, classified or not (for the check report)."""
        return {lvl: n for lvl, n in self.db.execute(
            "SELECT level, COUNT(*) FROM files WHERE level IS NOT NULL GROUP BY level")}

    def found(self, at_least: Level) -> list[Entry]:
        rows = self.db.execute("SELECT path, dev, ino, size, mtime_ns, sha256, level, evidence FROM files "
                               "WHERE level IS NOT NULL ORDER BY path").fetchall()
        return [e for e in map(_entry, rows) if e.level is not None and e.level >= at_least]

    def meta(self, key: str, default: str | None = None) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def commit(self) -> None:
        self.db.commit()


def _entry(row: tuple) -> Entry:
    path, dev, ino, size, mtime_ns, sha, level, evidence = row
    return Entry(path, dev, ino, size, mtime_ns, sha, Level.parse(level) if level else None, evidence or "[]")
