"""The central media registry (集中登记) as one signed document: pure, no I/O
(docs/media.md "集中登记 / registration from the console").

The security administrator registers and revokes media in the console; the collector
signs the **whole set** of current registrations, with a version number, with the same
key as the central policy:

    {"type": "media_registry", "version": 4, "issued_at": "2026-12-01T11:00:00Z",
     "media": [{"id": "M-0001", "owner": "张三", "level": "secret", "hosts": ["classified"],
                "vendor_id": "0781", "product_id": "5567", "serial": "4C53…", "fs_uuid": "3A5F-1C2D",
                "fs_label": "WORK", "issued": "2026-12-01T11:00:00Z", "expires": "2027-12-31",
                "registered_by": "sec1"}, ...],
     "revoked": [{"id": "M-0002", "revoked_at": "2026-12-01T12:00:00Z", "revoked_by": "sec1",
                  "reason": "lost"}, ...]}

One document for the whole set rather than one signed record per medium plus a signed
revocation list: a version number over everything gives rollback protection for
registrations and revocations alike (an agent refuses an older version, so nobody can
re-serve the document from before a revocation), and an agent holds exactly one thing.

`expires` is the last day (UTC) a registration is valid, or "" for no expiry. A revoked
id is in `revoked` and not in `media`; registering it again moves it back.
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Any, Iterable, Mapping

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from baomi.common import central
from baomi.common.central import Forged, Judgement, verified
from baomi.common.levels import Level

DOC_TYPE = "media_registry"
FIELDS = ("type", "version", "issued_at", "media", "revoked")
BINDING_KEYS = ("vendor_id", "product_id", "serial", "fs_uuid")   # = agent/media/identity.py
ENTRY_FIELDS = ("id", "owner", "level", "hosts", *BINDING_KEYS, "fs_label", "issued", "expires", "registered_by")
REVOKED_FIELDS = ("id", "revoked_at", "revoked_by", "reason")
HOST_CLASSES = ("classified", "unclassified")
ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
RESERVED_IDS = ("register",)       # console paths under /media/
AUTO_PREFIX = "M-"
MAX_TEXT = 200


def binding_of(medium: Mapping[str, Any]) -> dict[str, str]:
    return {k: str(medium.get(k) or "") for k in BINDING_KEYS}


def binds(record_binding: Mapping[str, Any], medium: Mapping[str, Any]) -> bool:
    """A registration binds a medium when its fs UUID is equal and every USB field it names
    is equal (an empty USB field in the registration means "not bound"); case-insensitive."""
    want, have = binding_of(record_binding), binding_of(medium)
    if not want["fs_uuid"] or want["fs_uuid"].lower() != have["fs_uuid"].lower():
        return False
    return all(not want[k] or want[k].lower() == have[k].lower() for k in ("vendor_id", "product_id", "serial"))


def parse_day(s: Any) -> dt.date | None:
    if not isinstance(s, str) or not s:
        return None
    try:
        return dt.date.fromisoformat(s)
    except ValueError:
        return None


def expired(entry: Mapping[str, Any], today: dt.date) -> bool:
    day = parse_day(entry.get("expires"))
    return day is not None and today > day


def entry(*, id: str, owner: str, level: str, hosts: Iterable[str], vendor_id: str = "", product_id: str = "",
          serial: str = "", fs_uuid: str, fs_label: str = "", issued: str, expires: str = "",
          registered_by: str = "") -> dict[str, Any]:
    """One registration; ValueError naming the bad field."""
    if not ID_RE.fullmatch(id or "") or id.lower() in RESERVED_IDS:
        raise ValueError(f"id: letters, digits and - _ . (at most 64), got {id!r}")
    try:
        lv = Level.parse(level)
    except ValueError as exc:
        raise ValueError(f"level: {exc}") from None
    given = list(hosts) if not isinstance(hosts, str) else [hosts]
    if not given or any(h not in HOST_CLASSES for h in given):
        raise ValueError(f"hosts: choose at least one of {', '.join(HOST_CLASSES)}")
    if not (fs_uuid or "").strip():
        raise ValueError("fs_uuid: required (the binding always names the filesystem UUID)")
    if expires and parse_day(expires) is None:
        raise ValueError(f"expires: a date YYYY-MM-DD or empty, got {expires!r}")
    out = {"id": id, "owner": owner.strip()[:MAX_TEXT], "level": lv.id,
           "hosts": [h for h in HOST_CLASSES if h in given],
           "vendor_id": vendor_id.strip().lower(), "product_id": product_id.strip().lower(),
           "serial": serial.strip(), "fs_uuid": fs_uuid.strip(), "fs_label": fs_label.strip()[:MAX_TEXT],
           "issued": issued, "expires": expires, "registered_by": registered_by}
    for k in ("vendor_id", "product_id", "serial", "fs_uuid"):
        if len(out[k]) > MAX_TEXT:
            raise ValueError(f"{k}: at most {MAX_TEXT} characters")
    return out


def empty() -> dict[str, Any]:
    return {"type": DOC_TYPE, "version": 0, "issued_at": "", "media": [], "revoked": []}


def document(version: int, media: Iterable[Mapping[str, Any]], revoked: Iterable[Mapping[str, Any]],
             issued_at: str) -> dict[str, Any]:
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"version must be a positive integer, got {version!r}")
    media = sorted((dict(m) for m in media), key=lambda m: m["id"])
    revoked = sorted((dict(r) for r in revoked), key=lambda r: r["id"])
    ids = [m["id"] for m in media]
    if len(set(ids)) != len(ids) or set(ids) & {r["id"] for r in revoked}:
        raise ValueError("an id is registered twice, or both registered and revoked")
    return {"type": DOC_TYPE, "version": version, "issued_at": issued_at, "media": media, "revoked": revoked}


def with_registration(doc: Mapping[str, Any], reg: Mapping[str, Any]) -> tuple[list, list]:
    """(media, revoked) of `doc` with `reg` added or replacing the entry of its id (and the id
    no longer revoked)."""
    media = [m for m in doc.get("media", []) if m["id"] != reg["id"]] + [dict(reg)]
    revoked = [r for r in doc.get("revoked", []) if r["id"] != reg["id"]]
    return media, revoked


def with_revocation(doc: Mapping[str, Any], rid: str, revoked_at: str, by: str, reason: str = "") -> tuple[list, list]:
    if not any(m["id"] == rid for m in doc.get("media", [])):
        raise LookupError(f"no registration {rid!r}")
    media = [m for m in doc["media"] if m["id"] != rid]
    revoked = [r for r in doc.get("revoked", []) if r["id"] != rid] + [
        {"id": rid, "revoked_at": revoked_at, "revoked_by": by, "reason": reason.strip()[:MAX_TEXT]}]
    return media, revoked


def next_id(ids: Iterable[str]) -> str:
    """M-0001, M-0002, …: one above the highest automatic id used so far."""
    top = 0
    for i in ids:
        m = re.fullmatch(re.escape(AUTO_PREFIX) + r"(\d+)", i or "")
        if m:
            top = max(top, int(m.group(1)))
    return f"{AUTO_PREFIX}{top + 1:04d}"


def verify(envelope: Any, key: Ed25519PublicKey) -> dict[str, Any]:
    """The registry document if the envelope is signed by `key` and well formed; Forged
    naming why otherwise."""
    doc = verified(envelope, key)
    if set(doc) != set(FIELDS) or doc.get("type") != DOC_TYPE:
        raise Forged(f"signed, but not a media registry document (fields {sorted(doc)})")
    v = doc.get("version")
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise Forged("signed, but its version is not a positive integer")
    media, revoked = doc.get("media"), doc.get("revoked")
    if not isinstance(media, list) or not isinstance(revoked, list):
        raise Forged("signed, but media / revoked are not lists")
    for m in media:
        if not isinstance(m, dict) or set(m) != set(ENTRY_FIELDS):
            raise Forged("signed, but a registration has unexpected fields")
        try:
            entry(**{k: m[k] for k in ENTRY_FIELDS})
        except (ValueError, TypeError, AttributeError) as exc:
            raise Forged(f"signed, but registration {str(m.get('id'))[:64]!r} is not valid: {exc}") from None
    for r in revoked:
        if not isinstance(r, dict) or not isinstance(r.get("id"), str) or not ID_RE.fullmatch(r["id"]):
            raise Forged("signed, but a revocation is not valid")
    ids = [m["id"] for m in media]
    if len(set(ids)) != len(ids) or set(ids) & {r["id"] for r in revoked}:
        raise Forged("signed, but an id is registered twice, or both registered and revoked")
    return doc


def judge(envelope: Any, key: Ed25519PublicKey, running: int, running_signature: str = "") -> Judgement:
    """As for policy (baomi.common.central.judge): apply a newer verified document, keep the
    same one, refuse a forged or older one."""
    return central.judge(envelope, key, running, running_signature, check=verify)


def changes(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> dict[str, list[str]]:
    """Which ids a new document adds, changes and revokes (agent event and audit)."""
    old = {m["id"]: m for m in (before or {}).get("media", [])}
    new = {m["id"]: m for m in after.get("media", [])}
    was_revoked = {r["id"] for r in (before or {}).get("revoked", [])}
    return {"registered": sorted(set(new) - set(old)),
            "changed": sorted(i for i in set(new) & set(old) if new[i] != old[i]),
            "revoked": sorted({r["id"] for r in after.get("revoked", [])} - was_revoked)}
