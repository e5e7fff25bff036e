"""Accounts and their password ages from passwd and shadow, and when each finding was last
reported (kept in the state folder, so a restart does not repeat the day's events)."""
from __future__ import annotations

import json
from pathlib import Path

from baomi.common.fsutil import atomic_write

from ..decide.posture import Account


def read_accounts(passwd: Path, shadow: Path) -> list[Account]:
    hashes: dict[str, tuple[str, int | None]] = {}
    for line in shadow.read_text("utf-8", errors="replace").splitlines():
        f = line.split(":")
        if len(f) >= 3 and f[0]:
            hashes[f[0]] = (f[1], int(f[2]) if f[2].strip().isdigit() else None)
    out = []
    for line in passwd.read_text("utf-8", errors="replace").splitlines():
        f = line.split(":")
        if len(f) < 7 or not f[0] or line.startswith(("#", "+", "-")):
            continue
        pw, last = hashes.get(f[0], (None, None))
        uid = int(f[2]) if f[2].isdigit() else -1
        out.append(Account(f[0], uid, f[6].strip(), pw, last))
    return out


def logged_in_names() -> set[str]:
    """Accounts with a login session now, from utmp (what `who` shows)."""
    import psutil
    try:
        return {u.name for u in psutil.users()}
    except OSError:
        return set()


class Reported:
    """account:finding -> unix time of its last event."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.when: dict[str, float] = {k: float(v) for k, v in json.loads(path.read_text()).items()}
        except (OSError, ValueError, AttributeError):
            self.when = {}

    def save(self) -> None:
        atomic_write(self.path, json.dumps(self.when, sort_keys=True).encode())
