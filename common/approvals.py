"""Copy approvals (审批) as signed documents (docs/media.md "审批"): pure, no I/O.

A user whose copy was blocked asks for approval (`approval.requested`, made by the
agent); the security administrator decides in the console, and the decision travels
to that one agent as a document signed with the same key as the central policy:

    {"type": "approval", "id": "<request id>", "seq": 12, "decision": "granted",
     "agent_id": "...", "user": {"uid": 1000, "name": "alice"},
     "sha256": "<the file content>", "medium": {"registry_id": "MED-0042"}
                                      or {"binding": {"vendor_id": ..., "fs_uuid": ...}},
     "issued_at": "2026-12-01T11:00:00Z", "expires_at": "2026-12-02T11:00:00Z",
     "copies": 1 or null, "decided_by": "sec1", "comment": "..."}

A granted approval covers one content (sha256), to one medium, by one user, on one
host, until `expires_at`, for at most `copies` copies (null: any number until then).
`void_reason` is the whole rule; an agent whose clock may be behind the collector's
by `skew_s` treats an approval as expired `skew_s` early.
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Any, Mapping

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from baomi.common.central import Forged, verified

DOC_TYPE = "approval"
DECISIONS = ("granted", "refused")
FIELDS = ("type", "id", "seq", "decision", "agent_id", "user", "sha256", "medium", "issued_at", "expires_at",
          "copies", "decided_by", "comment")
BINDING_KEYS = ("vendor_id", "product_id", "serial", "fs_uuid")   # = agent/media/identity.py
DEFAULT_HOURS = 24
MAX_HOURS = 24 * 30
MAX_REASON = 500
_SHA = re.compile(r"[0-9a-f]{64}")
_TIME = "%Y-%m-%dT%H:%M:%SZ"


def stamp(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime(_TIME)


def parse(s: Any) -> dt.datetime | None:
    if not isinstance(s, str):
        return None
    try:
        t = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


def medium_spec(medium: Mapping[str, Any]) -> dict[str, Any]:
    """Which medium an approval names, from an event's `medium` object: the registered id
    when the medium is registered, else the identity it is bound by (USB ids + fs UUID)."""
    if medium.get("registry_id"):
        return {"registry_id": str(medium["registry_id"])}
    return {"binding": {k: str(medium.get(k) or "") for k in BINDING_KEYS}}


def same_medium(spec: Mapping[str, Any], medium: Mapping[str, Any]) -> bool:
    if "registry_id" in spec:
        return bool(medium.get("registry_id")) and str(medium["registry_id"]) == spec["registry_id"]
    want = spec.get("binding") or {}
    if medium.get("registry_id") or not want.get("fs_uuid"):
        return False
    return all(str(want.get(k, "")).lower() == str(medium.get(k) or "").lower() for k in BINDING_KEYS)


def document(*, request_id: str, seq: int, decision: str, agent_id: str, user: Mapping[str, Any], sha256: str,
             medium: Mapping[str, Any], issued_at: dt.datetime, hours: float | None, copies: int | None,
             decided_by: str, comment: str = "") -> dict[str, Any]:
    """The document to sign; ValueError naming the bad field."""
    if decision not in DECISIONS:
        raise ValueError(f"decision must be one of {', '.join(DECISIONS)}, got {decision!r}")
    if not _SHA.fullmatch(sha256 or ""):
        raise ValueError("sha256 must be 64 lowercase hex digits")
    expires = None
    if decision == "granted":
        if hours is None or not (0 < hours <= MAX_HOURS):
            raise ValueError(f"validity must be between 0 and {MAX_HOURS} hours, got {hours!r}")
        expires = stamp(issued_at + dt.timedelta(hours=hours))
        if copies is not None and (not isinstance(copies, int) or isinstance(copies, bool) or copies < 1):
            raise ValueError(f"copies must be a positive number or empty, got {copies!r}")
    else:
        copies = None
    return {"type": DOC_TYPE, "id": request_id, "seq": seq, "decision": decision, "agent_id": agent_id,
            "user": {"uid": user.get("uid"), "name": user.get("name")}, "sha256": sha256,
            "medium": dict(medium), "issued_at": stamp(issued_at), "expires_at": expires, "copies": copies,
            "decided_by": decided_by, "comment": comment[:MAX_REASON]}


def verify(envelope: Any, key: Ed25519PublicKey, agent_id: str) -> dict[str, Any]:
    """The approval document if it is signed by `key`, well formed and addressed to this
    agent; Forged naming why otherwise."""
    doc = verified(envelope, key)
    if set(doc) != set(FIELDS) or doc.get("type") != DOC_TYPE:
        raise Forged(f"signed, but not an approval document (fields {sorted(doc)})")
    if doc["decision"] not in DECISIONS or not isinstance(doc["seq"], int) or not isinstance(doc["id"], str):
        raise Forged("signed, but its decision, seq or id is not valid")
    if doc["agent_id"] != agent_id:
        raise Forged(f"signed for another host ({str(doc['agent_id'])[:64]})")
    if not isinstance(doc["sha256"], str) or not _SHA.fullmatch(doc["sha256"]):
        raise Forged("signed, but its sha256 is not a content hash")
    if doc["decision"] == "granted" and parse(doc["expires_at"]) is None:
        raise Forged("signed, but a grant without a valid expiry")
    if not isinstance(doc["medium"], dict) or not isinstance(doc["user"], dict):
        raise Forged("signed, but its medium or user is not an object")
    return doc


def void_reason(doc: Mapping[str, Any], *, sha256: str, uid: int | None, medium: Mapping[str, Any],
                now: dt.datetime, skew_s: float, used: int) -> str | None:
    """None when the approval covers this copy; else why not (the rule, as one line)."""
    if doc.get("decision") != "granted":
        return "the request was refused"
    if doc.get("sha256") != sha256:
        return "approved for other content"
    if uid is None or doc.get("user", {}).get("uid") != uid:
        return "approved for another user"
    if not same_medium(doc.get("medium") or {}, medium):
        return "approved for another medium"
    expires = parse(doc.get("expires_at"))
    if expires is None or now + dt.timedelta(seconds=skew_s) >= expires:
        return "the approval has expired"
    copies = doc.get("copies")
    if copies is not None and used >= copies:
        return f"the approval's {copies} copies are used"
    return None
