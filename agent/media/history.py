"""The highest level ever seen on each registered medium ("一次涉密,终身涉密").

Kept in state_dir/media-levels.json; written atomically under a lock so the
agent and the copy-enforcement path can both raise levels.
"""
from __future__ import annotations

import fcntl
import json
import threading
from pathlib import Path

from baomi.common.fsutil import atomic_write
from baomi.common.levels import Level

_LOCK = threading.Lock()


class LevelHistory:
    FILE = "media-levels.json"

    def __init__(self, state_dir: Path | str):
        self.path = Path(state_dir) / self.FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def _read(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise RuntimeError(f"{self.path}: unreadable level history ({exc})") from None
        return data if isinstance(data, dict) else {}

    def get(self, medium_id: str) -> Level | None:
        value = self._read().get(medium_id)
        return Level.parse(value) if value is not None else None

    def all(self) -> dict[str, Level]:
        return {k: Level.parse(v) for k, v in self._read().items()}

    def raise_to(self, medium_id: str, level: Level | str) -> Level:
        """Record that `medium_id` held `level`; returns the (possibly higher) level now on record."""
        level = Level.parse(level)
        with _LOCK, open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = self._read()
            old = Level.parse(data[medium_id]) if medium_id in data else None
            if old is not None and old >= level:
                return old
            data[medium_id] = level.id
            atomic_write(self.path, json.dumps(data, sort_keys=True, indent=1).encode("utf-8"))
            return level
