"""Fingerprints of registered documents: the exact content hash plus winnowed
character n-gram hashes of the normalised text (Schleimer et al., "Winnowing").
Only hashes are stored, never text. A file holding a substantial excerpt of a
registered document (a share of its fingerprints and a minimum amount of its
text, see [fingerprint] in the rule files) takes the document's level."""
from __future__ import annotations

import datetime as dt
import hashlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from baomi.common.levels import Level
from .verdict import Evidence
from .normalize import for_fingerprint

K = 8             # characters per n-gram: long enough to be specific in Chinese and English
WINDOW = 8        # winnowing window: one fingerprint per window of K-grams at least
MAX_CHARS = 4_000_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
  id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, level TEXT NOT NULL, sha256 TEXT NOT NULL,
  chars INTEGER NOT NULL, fingerprints INTEGER NOT NULL, added_at TEXT NOT NULL, source TEXT);
CREATE INDEX IF NOT EXISTS documents_sha ON documents(sha256);
CREATE TABLE IF NOT EXISTS hashes (h INTEGER NOT NULL, doc INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
  PRIMARY KEY (h, doc)) WITHOUT ROWID;
"""


def default_db(config: Any) -> Path:
    """[scan] fingerprint_db, or state_dir/fingerprints.db."""
    return Path(config.scan.fingerprint_db or Path(config.state_dir) / "fingerprints.db")


def fingerprints(text: str) -> set[int]:
    """Winnowed hashes of the K-grams of the normalised text."""
    s = for_fingerprint(text[:MAX_CHARS])
    if len(s) < K:
        return set()
    grams = [int.from_bytes(hashlib.blake2b(s[i:i + K].encode(), digest_size=8).digest(), "big") >> 1
             for i in range(len(s) - K + 1)]
    if len(grams) <= WINDOW:
        return {min(grams)}
    picked: set[int] = set()
    for i in range(len(grams) - WINDOW + 1):
        picked.add(min(grams[i:i + WINDOW]))
    return picked


class FingerprintError(ValueError):
    pass


@dataclass
class Document:
    id: int
    name: str
    level: Level
    sha256: str
    chars: int
    fingerprints: int
    added_at: str
    source: str | None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "level": self.level.id, "sha256": self.sha256,
                "chars": self.chars, "fingerprints": self.fingerprints, "added_at": self.added_at,
                "source": self.source}


class FingerprintDB:
    """The registry of fingerprinted documents (one SQLite file)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path)
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    def add(self, name: str, level: Level, sha256: str, text: str, source: str | None = None) -> Document:
        fps = fingerprints(text)
        chars = len(for_fingerprint(text[:MAX_CHARS]))
        if not fps:
            raise FingerprintError(f"{source or name}: no text to fingerprint")
        with self.db:
            if self.db.execute("SELECT 1 FROM documents WHERE name=?", (name,)).fetchone():
                raise FingerprintError(f"a document named {name!r} is already registered (remove it first)")
            cur = self.db.execute(
                "INSERT INTO documents(name, level, sha256, chars, fingerprints, added_at, source) VALUES (?,?,?,?,?,?,?)",
                (name, level.id, sha256, chars, len(fps),
                 dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), source))
            doc = cur.lastrowid
            self.db.executemany("INSERT OR IGNORE INTO hashes(h, doc) VALUES (?,?)", ((h, doc) for h in fps))
        return self.get(name)  # type: ignore[return-value]

    def get(self, key: str) -> Document | None:
        row = self.db.execute("SELECT * FROM documents WHERE name=? OR CAST(id AS TEXT)=?", (key, key)).fetchone()
        return _doc(row) if row else None

    def list(self) -> list[Document]:
        return [_doc(r) for r in self.db.execute("SELECT * FROM documents ORDER BY id")]

    def remove(self, key: str) -> Document:
        doc = self.get(key)
        if doc is None:
            raise FingerprintError(f"no registered document {key!r}")
        with self.db:
            self.db.execute("DELETE FROM hashes WHERE doc=?", (doc.id,))
            self.db.execute("DELETE FROM documents WHERE id=?", (doc.id,))
        return doc


def _doc(row: tuple) -> Document:
    return Document(row[0], row[1], Level.parse(row[2]), row[3], row[4], row[5], row[6], row[7])


class FingerprintIndex:
    """In-memory view of the database for matching, reloaded when the file changes."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._stamp: tuple[int, int] | None = None
        self._docs: dict[int, Document] = {}
        self._by_sha: dict[str, Document] = {}
        self._hashes: dict[int, list[int]] = {}

    def _refresh(self) -> None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._stamp, self._docs, self._by_sha, self._hashes = None, {}, {}, {}
            return
        except PermissionError:
            return  # a scan worker that gave up root: it keeps what it read, the agent replaces it on a change
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        try:
            docs = {r[0]: _doc(r) for r in db.execute("SELECT * FROM documents")}
            hashes: dict[int, list[int]] = {}
            for h, d in db.execute("SELECT h, doc FROM hashes"):
                hashes.setdefault(h, []).append(d)
        except sqlite3.Error:
            return  # being written right now: keep the previous view, try next time
        finally:
            db.close()
        self._stamp, self._docs, self._hashes = stamp, docs, hashes
        self._by_sha = {d.sha256: d for d in docs.values()}

    def match(self, texts: Iterable[str], sha256: str | None, threshold: float, min_chars: int) -> list[Evidence]:
        self._refresh()
        if not self._docs:
            return []
        if sha256 and sha256 in self._by_sha:
            d = self._by_sha[sha256]
            return [Evidence("fingerprint.exact", "body", d.level, {"fingerprint": d.name}, d.sha256)]
        counts: dict[int, int] = {}
        for h in fingerprints("\n".join(texts)):
            for d in self._hashes.get(h, ()):
                counts[d] = counts.get(d, 0) + 1
        out = []
        for d_id, n in counts.items():
            d = self._docs[d_id]
            share = n / d.fingerprints
            if share >= threshold and d.chars * share >= min_chars:
                out.append(Evidence("fingerprint.partial", "body", d.level,
                                    {"fingerprint": d.name, "share": round(share, 2)}, d.sha256))
        return sorted(out, key=lambda e: -e.level)
