"""How a host protects what it judges, as its heartbeat says (agent/heartbeat.py): each
medium's enforcement mode and how confined its scan workers run. The host page shows the
whole of it (console/queries.protection_of); the agents table keeps a summary of the latest
heartbeat, so the host list finds the weaker hosts of a fleet without reading events."""
from __future__ import annotations

from typing import Any, Mapping

ENFORCE_MODES = ("held", "after_write")
SCAN_STATES = ("confined", "partial", "root")
NOT_STARTED = "not_started"   # the heartbeat says null: no worker has started since the agent did
WEAK_SCAN_STATES = ("partial", "root", "unknown")
MAX_MEDIA = 32                # media in one heartbeat's enforcement map (a PC has a few)


def scan_state(details: Mapping[str, Any]) -> str | None:
    """The scan workers' state: one of SCAN_STATES, NOT_STARTED, `unknown` for a report that is
    not one, None when the agent does not report it (an older version)."""
    if "scan_workers" not in details:
        return None
    sw = details["scan_workers"]
    if sw is None:
        return NOT_STARTED
    state = sw.get("state") if isinstance(sw, dict) else None
    return state if state in SCAN_STATES else "unknown"


def weaker_media(details: Mapping[str, Any]) -> int | None:
    """How many attached media run in a mode other than `held`; None when not reported."""
    modes = details.get("enforcement")
    if not isinstance(modes, dict):
        return None
    return sum(modes[k] != "held" for k in list(modes)[:MAX_MEDIA])


def summary(details: Mapping[str, Any]) -> dict[str, Any]:
    """The agents table's columns, from one heartbeat's details."""
    return {"weaker_media": weaker_media(details), "scan_workers": scan_state(details)}


def is_weaker(weaker: int | None, scan: str | None) -> bool:
    """A host to look at: a medium not held, or scan workers not fully confined."""
    return bool(weaker) or scan in WEAK_SCAN_STATES
