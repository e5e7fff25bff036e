"""The central media registry on the collector (docs/media.md "集中登记"): the security
administrator registers and revokes media in the console; each change signs the whole set
of current registrations as the next version of one registry document (with the
passphrase-sealed key of service/central.py), which agents fetch from
GET /api/v1/media-registry when a batch answer names a version they do not hold.

A medium's level only rises (一次涉密,终身涉密): a registration is refused when its level
is below the highest level the collector has seen the medium hold (`highest_level`).
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

import sqlalchemy as sa

from baomi.common import central as doc_rules
from baomi.common import media_registry as rules
from baomi.common.levels import Level

from . import central, db

T = db.media_registry_documents
HISTORY_KINDS = ("file.copied", "file.renamed", "file.blocked", "file.uninspectable", "approval.used")
HISTORY_LIMIT = 5000     # matching events read for one medium's page (most recent first)


class LevelLowering(ValueError):
    """A registration below the level the medium has held."""

    def __init__(self, rid: str, requested: Level, held: Level, why: dict[str, Any]):
        super().__init__(f"{rid}: level {requested.id} is below {held.id}, which this medium has held "
                         f"({because(why)})")
        self.rid, self.requested, self.held, self.why = rid, requested, held, why


def because(why: Mapping[str, Any]) -> str:
    """A highest_level reason in words (for logs and the audit record; the console says it
    in the reader's language from the same fields: media.held_<source>)."""
    if why.get("source") == "registry":
        return f"registered as {why['id']} at that level in registry version {why['version']}"
    if why.get("source") == "file":
        return f"{why['file']} copied onto it on {why['host']}"
    return f"{why.get('kind')} on {why.get('host')}"


def latest(conn: sa.Connection) -> central.Published | None:
    return central.latest_of(conn, T)


def latest_version(conn: sa.Connection) -> int:
    return central.latest_version_of(conn, T)


def current(conn: sa.Connection) -> dict[str, Any]:
    pub = latest(conn)
    return pub.document if pub is not None else rules.empty()


def find(doc: Mapping[str, Any], rid: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(registration, revocation) of `rid` in a document."""
    reg = next((m for m in doc.get("media", []) if m["id"] == rid), None)
    rev = next((r for r in doc.get("revoked", []) if r["id"] == rid), None)
    return reg, rev


def all_ids(conn: sa.Connection) -> set[str]:
    ids: set[str] = set()
    for pub in central.history_of(conn, T, 10 ** 6):
        ids |= {m["id"] for m in pub.document.get("media", [])} | {r["id"] for r in pub.document.get("revoked", [])}
    return ids


# --------------------------------------------------------------------- a medium's history
def _matches(medium: Mapping[str, Any], rid: str | None, binding: Mapping[str, Any]) -> bool:
    if rid and medium.get("registry_id") == rid:
        return True
    return bool(binding.get("fs_uuid")) and rules.binds(binding, medium)


def events_of(conn: sa.Connection, rid: str | None, binding: Mapping[str, Any],
              limit: int = HISTORY_LIMIT) -> list[dict[str, Any]]:
    """Agent events about this medium (its registry id, or its binding: fs UUID and the USB
    ids the binding names), most recent first: medium.* and copies to or from it."""
    E = db.events
    needles = [s for s in (binding.get("fs_uuid"), rid) if s]
    if not needles:
        return []
    like = sa.or_(*[E.c.body.like(f"%{n}%") for n in needles])
    kinds = sa.or_(E.c.kind.like("medium.%"), E.c.kind.in_(HISTORY_KINDS))
    stmt = (sa.select(E.c.event_id, E.c.time, E.c.kind, E.c.host_name, E.c.user_name, E.c.action, E.c.level,
                      E.c.file_name, E.c.body)
            .where(E.c.agent_id != "collector", kinds, like).order_by(E.c.time.desc()).limit(limit))
    out = []
    for row in conn.execute(stmt):
        body = json.loads(row.body)
        m = body.get("medium") or {}
        if _matches(m, rid, binding):
            out.append({"event_id": row.event_id, "time": row.time, "kind": row.kind, "host": row.host_name,
                        "user": row.user_name, "action": row.action, "level": row.level, "file_name": row.file_name,
                        "medium": m, "file": body.get("file") or {}, "details": body.get("details") or {}})
    return out


@dataclass
class History:
    events: list[dict[str, Any]]
    hosts: list[dict[str, Any]] = field(default_factory=list)    # host -> first/last use, events
    copies: list[dict[str, Any]] = field(default_factory=list)   # file.* events


def history(conn: sa.Connection, rid: str | None, binding: Mapping[str, Any]) -> History:
    evs = events_of(conn, rid, binding)
    hosts: dict[str, dict[str, Any]] = {}
    for e in evs:
        h = hosts.setdefault(e["host"] or "?", {"host": e["host"], "first": e["time"], "last": e["time"], "count": 0,
                                               "classes": set()})
        h["first"], h["last"] = min(h["first"], e["time"]), max(h["last"], e["time"])
        h["count"] += 1
        if e["kind"].startswith("medium.") and e["medium"].get("class"):
            h["classes"].add(e["medium"]["class"])
    copies = [e for e in evs if not e["kind"].startswith("medium.")]
    return History(evs, sorted(hosts.values(), key=lambda h: h["last"], reverse=True), copies)


def highest_level(conn: sa.Connection, rid: str, binding: Mapping[str, Any]) -> tuple[Level | None, dict[str, Any]]:
    """The highest level this medium is known to have held, and where that comes from
    ({"source": "registry", id, version} | {"source": "event", kind, host} |
    {"source": "file", file, host}): its registrations in every registry version so far
    (under its id, or another id bound to the same medium), the level its agents' medium.*
    events gave it (the agent's own level history included), and every file copied onto it."""
    best: tuple[Level | None, dict[str, Any]] = (None, {})

    def consider(value: Any, why: dict[str, Any]) -> None:
        nonlocal best
        try:
            lv = Level.parse(value)
        except (ValueError, TypeError):
            return
        if best[0] is None or lv > best[0]:
            best = (lv, why)
    for pub in central.history_of(conn, T, 10 ** 6):   # its registrations, under this id or another
        for reg in pub.document.get("media", []):
            if reg["id"] == rid or rules.binds(reg, binding):
                consider(reg["level"], {"source": "registry", "id": reg["id"], "version": pub.version})
    for e in events_of(conn, rid, binding):
        if e["kind"].startswith("medium.") and e["medium"].get("level"):
            consider(e["medium"]["level"], {"source": "event", "kind": e["kind"], "host": e["host"]})
        elif e["kind"] == "file.copied" and e["file"].get("level"):
            consider(e["file"]["level"], {"source": "file", "file": e["file_name"] or e["file"].get("name"),
                                          "host": e["host"]})
    return best


# --------------------------------------------------------------------- changes, signed
@dataclass
class Change:
    published: central.Published
    rid: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


def _publish(conn: sa.Connection, passphrase: str, by: str, media: list, revoked: list) -> central.Published:
    key = central.signing_key(conn, passphrase)
    version = latest_version(conn) + 1
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    doc = rules.document(version, media, revoked, now.strftime("%Y-%m-%dT%H:%M:%SZ"))
    env = doc_rules.sign(doc, key)
    del key
    conn.execute(T.insert().values(version=version, issued_at=now, published_by=by,
                                   document=json.dumps(doc, ensure_ascii=False, sort_keys=True),
                                   signature=env["signature"]))
    return central.Published(version, now, by, doc, env["signature"])


def register(engine: sa.Engine, fields: Mapping[str, Any], passphrase: str, by: str) -> Change:
    """Register (or change the registration of) one medium as the next registry version.
    ValueError (a bad field) / LevelLowering / central.WrongPassphrase / NoSigningKey /
    sqlalchemy IntegrityError (another change took the version first) leave nothing stored."""
    with engine.begin() as conn:
        doc = current(conn)
        rid = str(fields.get("id") or "").strip() or rules.next_id(all_ids(conn))
        now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        reg = rules.entry(id=rid, owner=str(fields.get("owner") or ""), level=str(fields.get("level") or ""),
                          hosts=list(fields.get("hosts") or []), vendor_id=str(fields.get("vendor_id") or ""),
                          product_id=str(fields.get("product_id") or ""), serial=str(fields.get("serial") or ""),
                          fs_uuid=str(fields.get("fs_uuid") or ""), fs_label=str(fields.get("fs_label") or ""),
                          issued=now, expires=str(fields.get("expires") or "").strip(), registered_by=by)
        other = next((m for m in doc["media"] if m["id"] != rid and (rules.binds(m, reg) or rules.binds(reg, m))),
                     None)
        if other is not None:
            raise ValueError(f"this medium is registered already as {other['id']}: change that registration")
        held, why = highest_level(conn, rid, reg)
        if held is not None and Level.parse(reg["level"]) < held:
            raise LevelLowering(rid, Level.parse(reg["level"]), held, why)
        before, _ = find(doc, rid)
        media, revoked = rules.with_registration(doc, reg)
        pub = _publish(conn, passphrase, by, media, revoked)
    return Change(pub, rid, before, reg)


def revoke(engine: sa.Engine, rid: str, passphrase: str, by: str, reason: str = "") -> Change:
    """Revoke a registration as the next registry version (LookupError when not registered)."""
    with engine.begin() as conn:
        doc = current(conn)
        before, _ = find(doc, rid)
        now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        media, revoked = rules.with_revocation(doc, rid, now, by, reason)
        pub = _publish(conn, passphrase, by, media, revoked)
    _, after = find(pub.document, rid)
    return Change(pub, rid, before, after)
