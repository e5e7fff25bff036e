"""The host side of held writes: staged copies, their size cap, and the durable
sidecar record of each (so a crash never loses a file silently)."""
from __future__ import annotations

import json
import os
import threading
import uuid
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import quote

from baomi.common.fsutil import atomic_write

# Sidecar states. open: the writer has not closed yet (content incomplete).
# closed: complete, not on the medium yet (a hidden .baomi-commit-<id> copy may exist
# there). committed: on the medium (in memory only: its record is removed then, and a
# data file without a record is a leftover to delete).
OPEN, CLOSED, COMMITTED = "open", "closed", "committed"


def _write_atomic(path: Path, data: bytes, durable: bool) -> None:
    # no fsync of the folder: if a power loss undoes the rename, the previous record stands
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

    def record_path(self, sid: str) -> Path:
        return self.dir / f"{sid}.json"

    def create_data(self, sid: str) -> int:
        return os.open(self.data_path(sid), os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)

    def write_record(self, sid: str, record: dict[str, Any], durable: bool | None = None) -> None:
        durable = self.durable if durable is None else durable
        # no fsync of the directory: if a power loss undoes the rename, the previous
        # record ("open") is what recovery finds, and it reports the file lost
        _write_atomic(self.record_path(sid), json.dumps(record).encode(), durable)

    def remove_record(self, sid: str) -> None:
        try:
            self.record_path(sid).unlink()
        except FileNotFoundError:
            pass

    def remove(self, sid: str) -> None:
        for p in (self.record_path(sid), self.data_path(sid)):
            try:
                p.unlink()
            except FileNotFoundError:
                pass

    def records(self) -> Iterator[tuple[str, dict[str, Any] | None]]:
        """(id, record) for every staged entry on disk; record None when only the data
        file is left (the crash came before the first record was written)."""
        seen = set()
        for p in sorted(self.dir.iterdir()):
            if p.name.endswith(".tmp"):
                p.unlink(missing_ok=True)
                continue
            sid, _, ext = p.name.partition(".")
            if ext not in ("json", "data") or sid in seen:
                continue
            seen.add(sid)
            rec = None
            try:
                rec = json.loads(self.record_path(sid).read_text())
            except (OSError, ValueError):
                pass
            yield sid, rec

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
