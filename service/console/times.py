"""Times in the console: stored in UTC, shown and typed in the office's zone
(`[console] time_zone`, default the server's own). Exports keep UTC."""
from __future__ import annotations

import datetime as dt
import os
import zoneinfo
from pathlib import Path

UTC = dt.timezone.utc
SHOWN = "%Y-%m-%d %H:%M:%S"
_ZONEINFO_DIRS = ("/usr/share/zoneinfo/", "/usr/lib/zoneinfo/", "/usr/share/lib/zoneinfo/")


def _server_zone_name() -> str | None:
    """The server's zone as an IANA name: $TZ, /etc/timezone, or where /etc/localtime points."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    try:
        candidates.append(Path("/etc/timezone").read_text().strip())
    except OSError:
        pass
    try:
        target = os.path.realpath("/etc/localtime")
        candidates += [target[len(d):] for d in _ZONEINFO_DIRS if target.startswith(d)]
    except OSError:
        pass
    for name in candidates:
        if name:
            try:
                zoneinfo.ZoneInfo(name)
                return name
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                continue
    return None


def office_zone(name: str = "") -> dt.tzinfo:
    """The configured zone (validated with the config), else the server's, else UTC."""
    name = name or _server_zone_name() or ""
    if name:
        return zoneinfo.ZoneInfo(name)
    return UTC


def zone_name(tz: dt.tzinfo) -> str:
    """What the pages call the zone: its IANA name ("Asia/Shanghai"), "UTC" for UTC."""
    key = getattr(tz, "key", None)
    return "UTC" if tz is UTC or key in ("Etc/UTC", "UTC") else (key or str(tz))


def shown(t: dt.datetime | None, tz: dt.tzinfo, fmt: str = SHOWN, zone: bool = False) -> str:
    """A stored time (aware, or naive UTC) in the office zone; `zone` adds the zone's
    abbreviation ("2026-12-01 22:03:12 CST")."""
    if t is None:
        return ""
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    local = t.astimezone(tz)
    return local.strftime(fmt) + (" " + (local.tzname() or zone_name(tz)) if zone else "")


def localise(naive: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """A wall-clock time typed in the office zone, as aware UTC."""
    return naive.replace(tzinfo=tz).astimezone(UTC)
