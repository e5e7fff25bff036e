"""The intent journal that makes blocking crash-safe.

Blocking a file is a small state machine, each step made durable before the
next one starts:

    intent  -> the journal record is on disk (what, where, the event id to use)
    stored  -> the encrypted quarantine entry is complete and synced (or the
               content is deliberately not kept: quarantine full / no key)
    removed -> the file is gone from the medium (folder synced)
    done    -> the file.blocked event is in the spool; the record is deleted

After a SIGKILL at any point, recovery (Blocker.recover in block.py) resumes each
record from its state: nothing is removed from the medium before it is stored,
and the event id is fixed in the intent, so a resumed step never records the
event twice.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from baomi.common.fsutil import atomic_write, fsync_dir, private_dir

STATES = ("intent", "stored", "removed")


class Journal:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        private_dir(self.root)

    def _path(self, rec_id: str) -> Path:
        return self.root / f"{rec_id}.json"

    def put(self, record: dict[str, Any]) -> None:
        """Write (or advance) a record atomically and durably."""
        if record.get("state") not in STATES:
            raise ValueError(f"journal state must be one of {STATES}, got {record.get('state')!r}")
        atomic_write(self._path(record["id"]),
                     json.dumps(record, sort_keys=True, ensure_ascii=False).encode("utf-8"))

    def done(self, rec_id: str) -> None:
        self._path(rec_id).unlink(missing_ok=True)
        fsync_dir(self.root, strict=True)

    def pending(self) -> Iterator[dict[str, Any]]:
        for path in sorted(self.root.glob("*.json")):
            try:
                rec = json.loads(path.read_text("utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(rec, dict) and rec.get("state") in STATES:
                yield rec
