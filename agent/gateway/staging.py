"""The host side of held writes: staged copies, their size cap, and the journal that
names each of them (so a crash never loses a file silently).

The journal is one append-only file of JSON lines, one line per change of a staged
file's state: appending a line costs one write(2), where a record file of its own per
staged file cost a create, a rename and an unlink. The last line of an id wins; a line
cut short by a crash is ignored (the line before it stands).
"""
from __future__ import annotations

import json
import os
import threading
import uuid
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import quote

from baomi.common.fsutil import atomic_write

# Journal states. open: the writer has not closed yet (content incomplete).
# closed: complete, not on the medium yet (a hidden .baomi-commit-<id> copy may exist
# there). committed: on the medium; a data file whose last line says so, or that has
# no line at all, is a leftover to delete.
OPEN, CLOSED, COMMITTED = "open", "closed", "committed"
JOURNAL = "journal.jsonl"
COMPACT_AT = 1 << 20      # rewrite the journal with only live entries past this size


def _write_atomic(path: Path, data: bytes, durable: bool) -> None:
    # no fsync of the folder: if a power loss undoes the rename, the previous file stands
    atomic_write(path, data, fsync=durable, fsync_folder=False)


class StagingArea:
    """Root-only directory with a total size cap (apparent sizes: a sparse file counts
    at its full length, because that is what the medium will receive)."""

    def __init__(self, directory: Path, cap_bytes: int, durable: bool = True) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chown(self.dir, 0, 0)
        os.chmod(self.dir, 0o700)
        (self.dir / "media").mkdir(mode=0o700, exist_ok=True)
        self.cap = cap_bytes
        self.durable = durable
        self.used = 0
        self._lock = threading.Lock()
        self._dirfd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._live: dict[str, dict[str, Any]] = self._read_journal()
        self._journal = -1
        self._compact()

    # -- size cap -------------------------------------------------------------
    def reserve(self, n: int) -> bool:
        with self._lock:
            if n > 0 and self.used + n > self.cap:
                return False
            self.used += n
            return True

    def release(self, n: int) -> None:
        with self._lock:
            self.used = max(0, self.used - n)

    # -- staged data ----------------------------------------------------------
    def new_id(self) -> str:
        return uuid.uuid4().hex

    def data_path(self, sid: str) -> Path:
        return self.dir / f"{sid}.data"

    def create_data(self, sid: str) -> int:
        return os.open(self.data_path(sid), os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)

    # -- the journal -------------------------------------------------------------
    def _path(self) -> Path:
        return self.dir / JOURNAL

    def _read_journal(self) -> dict[str, dict[str, Any]]:
        live: dict[str, dict[str, Any]] = {}
        try:
            with open(self._path(), "rb") as f:
                for line in f:
                    try:
                        entry = json.loads(line)
                        sid = entry.pop("sid")
                    except (ValueError, KeyError, AttributeError, TypeError):
                        continue     # cut short by a crash, or not ours
                    if entry.get("state") == COMMITTED:
                        live.pop(sid, None)
                    else:
                        live[sid] = entry
        except FileNotFoundError:
            pass
        return live

    def _append(self, sid: str, entry: dict[str, Any], durable: bool) -> None:
        line = json.dumps({"sid": sid, **entry}, separators=(",", ":")).encode() + b"\n"
        with self._lock:
            os.write(self._journal, line)   # O_APPEND: one write, one line
            if durable:
                os.fdatasync(self._journal)
            if os.fstat(self._journal).st_size > COMPACT_AT:
                self._compact()

    def _compact(self) -> None:
        """Rewrite the journal with one line per live entry (caller holds the lock, or
        is the constructor)."""
        data = b"".join(json.dumps({"sid": sid, **e}, separators=(",", ":")).encode() + b"\n"
                        for sid, e in self._live.items())
        _write_atomic(self._path(), data, True)
        if self._journal >= 0:
            os.close(self._journal)
        self._journal = os.open(self._path(), os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)

    def write_record(self, sid: str, record: dict[str, Any], durable: bool | None = None) -> None:
        durable = self.durable if durable is None else durable
        # if a power loss drops this line, the line before it ("open") is what recovery
        # finds, and it reports the file lost
        with self._lock:
            self._live[sid] = record
        self._append(sid, record, durable)

    def remove_record(self, sid: str) -> None:
        """On the medium: nothing left to recover (a later write records again)."""
        with self._lock:
            known = self._live.pop(sid, None) is not None
        if known:
            self._append(sid, {"state": COMMITTED}, False)

    def remove(self, sid: str) -> None:
        self.remove_record(sid)
        try:
            self.data_path(sid).unlink()
        except FileNotFoundError:
            pass

    def records(self) -> Iterator[tuple[str, dict[str, Any] | None]]:
        """(id, record) for every staged entry on disk; record None when only the data
        file is left (the crash came before its first line was written)."""
        with self._lock:
            live = dict(self._live)
        for p in sorted(self.dir.iterdir()):
            if p.name.endswith(".tmp"):
                p.unlink(missing_ok=True)
                continue
            sid, _, ext = p.name.partition(".")
            if ext == "data" and sid not in live:
                yield sid, None
        yield from live.items()

    # -- media records (where each medium was mounted, to serve it again) ------
    def medium_record_path(self, key: str) -> Path:
        return self.dir / "media" / (quote(key, safe="") + ".json")

    def write_medium(self, key: str, record: dict[str, Any]) -> None:
        _write_atomic(self.medium_record_path(key), json.dumps(record).encode(), True)

    def remove_medium(self, key: str) -> None:
        self.medium_record_path(key).unlink(missing_ok=True)

    def media(self) -> list[dict[str, Any]]:
        out = []
        for p in sorted((self.dir / "media").glob("*.json")):
            try:
                out.append(json.loads(p.read_text()))
            except (OSError, ValueError):
                p.unlink(missing_ok=True)
        return out

    def close(self) -> None:
        os.close(self._dirfd)
        with self._lock:
            if self._journal >= 0:
                os.close(self._journal)
                self._journal = -1
