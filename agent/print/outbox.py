"""Print jobs decided while the agent was not running: the backend leaves each one here
(root only) and the agent records it as `print.job` when it runs again, so a job the
backend turned away (or let through) with nobody listening is still on the record."""
from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any, Callable

from baomi.common.fsutil import atomic_write, private_dir


def folder(state_dir: Path) -> Path:
    return state_dir / "print" / "outbox"


def leave(state_dir: Path, entry: dict[str, Any]) -> Path:
    """Write one job's event fields (kind print.job) for the agent to record later."""
    where = private_dir(folder(state_dir))
    path = where / f"{entry.get('details', {}).get('job_id', 'job')}-{uuid.uuid4().hex}.json"
    atomic_write(path, json.dumps(entry, ensure_ascii=False, sort_keys=True).encode("utf-8"))
    return path


def drain(state_dir: Path, record: Callable[..., Any]) -> int:
    """Record every entry left behind, oldest first, and remove each once it is in the spool."""
    where = folder(state_dir)
    try:
        names = sorted((n for n in os.listdir(where) if n.endswith(".json")), key=lambda n: os.stat(where / n).st_mtime_ns)
    except OSError:
        return 0
    done = 0
    for name in names:
        path = where / name
        try:
            entry = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError):
            path.rename(path.with_suffix(".bad"))  # kept for a person to look at, never retried
            continue
        record("print.job", **entry)
        path.unlink(missing_ok=True)
        done += 1
    return done
