"""The active user, best effort: logind's session files, then utmp (psutil.users())."""
from __future__ import annotations

import os
import pwd
from pathlib import Path
from typing import Any

import psutil

from baomi.common.events import user_obj

SESSIONS = Path("/run/systemd/sessions")


def _kv(path: Path) -> dict[str, str]:
    out = {}
    try:
        for line in path.read_text("utf-8", "replace").splitlines():
            k, sep, v = line.partition("=")
            if sep:
                out[k] = v
    except OSError:
        pass
    return out


def active_user(sessions_dir: Path = SESSIONS) -> dict[str, Any] | None:
    """{uid, name, session} of the active (preferably graphical) session, or None."""
    best = None
    try:
        names = sorted(os.listdir(sessions_dir))
    except OSError:
        names = []
    for name in names:
        s = _kv(sessions_dir / name)
        if not s.get("UID") or s.get("CLASS", "user") != "user":
            continue
        score = (s.get("ACTIVE") == "1") * 2 + (s.get("TYPE") in ("x11", "wayland", "mir"))
        if best is None or score > best[0]:
            best = (score, user_obj(int(s["UID"]), s.get("USER", ""), name))
    if best:
        return best[1]
    try:
        users = psutil.users()
    except Exception:
        users = []
    for u in users:
        try:
            uid = pwd.getpwnam(u.name).pw_uid
        except KeyError:
            uid = None
        return user_obj(uid, u.name, u.terminal or None)
    return None
