"""The one event schema shared by agent and collector (docs/events.md).

An event is a plain JSON object:

    id        uuid4 string
    seq       per-agent sequence number (1, 2, ...), assigned by the spool
    time      UTC, ISO 8601 with microseconds and "Z"
    agent_id  the agent's id (hex of its public key hash)
    host      {id, name, class}
    user      {uid, name, session} or null
    kind      dotted name, e.g. medium.inserted, file.blocked, screenlock.enforced
    severity  info | low | medium | high | critical
    medium    the medium's identity, or null
    file      {path, size, sha256, type, level, evidence, ...} or null
    session   {id, seat, type, idle_s, ...} or null
    process   {pid, exe, comm} or null
    action    allow | audit | notify | block | read_only | deny | ... or null
    rule      what decided (policy rule id), or null
    details   any further facts for this kind
    prev_hash hash of the previous event of the same agent ("" for seq 1)
    hash      sha256 over prev_hash and the canonical JSON of all other fields

Every kind is declared in catalogue.py; make_event refuses any other. The
objects (user, medium, file, process) are built by the typed builders below,
so each is shaped in one place. Pure functions only; the agent's spool adds
seq and the chain.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import re
import uuid
from typing import Any

from .catalogue import SEVERITIES, is_security, kind as catalogue_kind

__all__ = ["SEVERITIES", "ACTIONS", "FIELDS", "is_security", "make_event", "validate", "canonical",
           "event_hash", "verify_chain", "utcnow", "user_obj", "process_obj", "medium_obj", "file_obj"]

ACTIONS: tuple[str, ...] = ("allow", "audit", "notify", "block", "read_only", "deny")

# Fields every stored event has; the collector checks these (schema validation).
FIELDS: tuple[str, ...] = (
    "id", "seq", "time", "agent_id", "host", "user", "kind", "severity", "medium",
    "file", "session", "process", "action", "rule", "details", "prev_hash", "hash",
)



def utcnow() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(obj: Any) -> bytes:
    """Canonical JSON bytes: sorted keys, no spaces, UTF-8. Hashes and signatures use this."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def event_hash(event: dict[str, Any]) -> str:
    return hash_of(event, canonical({k: v for k, v in event.items() if k != "hash"}))


def hash_of(event: dict[str, Any], canonical_without_hash: bytes) -> str:
    """event_hash when the caller already holds the canonical bytes of the event without its hash."""
    h = hashlib.sha256()
    h.update(str(event.get("prev_hash", "")).encode("ascii"))
    h.update(canonical_without_hash)
    return h.hexdigest()


def verify_chain(events: list[dict[str, Any]], prev_hash: str = "") -> int | None:
    """Return the index of the first event whose hash or link is wrong, or None if all verify."""
    for i, ev in enumerate(events):
        if ev.get("prev_hash") != prev_hash or event_hash(ev) != ev.get("hash"):
            return i
        prev_hash = ev["hash"]
    return None


def make_event(
    kind: str,
    *,
    severity: str | None = None,
    host: dict[str, Any] | None = None,
    user: dict[str, Any] | None = None,
    medium: dict[str, Any] | None = None,
    file: dict[str, Any] | None = None,
    session: dict[str, Any] | None = None,
    process: dict[str, Any] | None = None,
    action: str | None = None,
    rule: str | None = None,
    details: dict[str, Any] | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """A new event without seq/agent/chain fields (the spool fills those in).

    The kind must be in the catalogue; severity defaults to the kind's own."""
    severity = severity or catalogue_kind(kind).severity
    if severity not in SEVERITIES:
        raise ValueError(f"severity {severity!r} is not one of {SEVERITIES}")
    return {
        "id": event_id or str(uuid.uuid4()),
        "time": utcnow(),
        "host": host,
        "user": user,
        "kind": kind,
        "severity": severity,
        "medium": medium,
        "file": file,
        "session": session,
        "process": process,
        "action": action,
        "rule": rule,
        "details": details or {},
    }


def validate(event: Any) -> str | None:
    """Schema check of a stored event; returns a message naming what is wrong, or None."""
    if not isinstance(event, dict):
        return "event is not a JSON object"
    missing = [f for f in FIELDS if f not in event]
    if missing:
        return f"event lacks field(s) {', '.join(missing)}"
    extra = [k for k in event if k not in FIELDS]
    if extra:
        return f"event has unknown field(s) {', '.join(extra)}"
    if not isinstance(event["seq"], int) or isinstance(event["seq"], bool) or event["seq"] < 1:
        return "seq must be a positive integer"
    for key in ("id", "time", "agent_id", "kind", "severity", "prev_hash", "hash"):
        if not isinstance(event[key], str):
            return f"{key} must be a string"
    if event["severity"] not in SEVERITIES:
        return f"severity {event['severity']!r} unknown"
    for key in ("host", "user", "medium", "file", "session", "process"):
        if event[key] is not None and not isinstance(event[key], dict):
            return f"{key} must be an object or null"
    if not isinstance(event["details"], dict):
        return "details must be an object"
    if not _TIME.fullmatch(event["time"]):
        return f"time {event['time']!r} is not ISO 8601 UTC (YYYY-MM-DDTHH:MM:SS.ffffffZ)"
    try:
        _dt.datetime.fromisoformat(event["time"][:-1])  # a real date and time, not 2026-13-45
    except ValueError:
        return f"time {event['time']!r} is not a valid date and time"
    return None


_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", re.ASCII)


# -- the event's objects, each shaped in one place ------------------------------
def user_obj(uid: int | None, name: str | None = None, session: str | None = None) -> dict[str, Any] | None:
    """`user`: who. None when no user is involved (or the uid is unknown)."""
    if uid is None:
        return None
    return {"uid": uid, "name": name, "session": session}


def process_obj(pid: int | None, exe: str | None = None, comm: str | None = None) -> dict[str, Any] | None:
    if pid is None:
        return None
    return {"pid": pid, "exe": exe, "comm": comm}


def medium_obj(identity: dict[str, Any] | None, mountpoint: str | None = None, **extra: Any) -> dict[str, Any]:
    """`medium`: the medium's identity (media/identity.py), with where it is mounted when it is."""
    out = dict(identity or {})
    if mountpoint is not None:
        out["mountpoint"] = mountpoint
    out.update(extra)
    return out


def file_obj(path: str, *, mountpoint: str | None = None, size: int | None = None, sha256: str | None = None,
             verdict: Any = None, **extra: Any) -> dict[str, Any]:
    """`file`: path relative to the medium (when under its mount point), name, size, hash and,
    when scanned, type, level, evidence and whether it could be inspected."""
    rel = path
    if mountpoint and (path == mountpoint or path.startswith(mountpoint.rstrip("/") + "/")):
        rel = path[len(mountpoint.rstrip("/")) + 1:] or "."
    out: dict[str, Any] = {"path": rel, "name": path.rsplit("/", 1)[-1]}
    if mountpoint is not None:
        out["mountpoint"] = mountpoint
    if size is not None:
        out["size"] = size
    if sha256 is not None:
        out["sha256"] = sha256
    if verdict is not None:
        out.update(type=verdict.type, level=verdict.level.id,
                   evidence=[e.to_json() if hasattr(e, "to_json") else e for e in verdict.evidence],
                   inspectable=verdict.inspectable)
        if not verdict.inspectable:
            out["reason"] = verdict.reason
    out.update(extra)
    return out
