"""Batches of agent events: verified (known agent, Ed25519 signature over the
raw body, batch counter, sizes, schema), stored in one transaction exactly once
per (agent, seq), acknowledged with the highest contiguous sequence stored.
A broken hash chain or an unannounced hole is stored too — evidence is never
thrown away — and recorded as a chain.break / chain.gap security event."""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import os
import threading
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from baomi.common import events as ev
from baomi.common.catalogue import ANNOUNCES_DROPS
from baomi.common import schema

from . import approvals, db, protection
from .own_events import insert_collector_event, now


class Rejected(Exception):
    """The batch is refused and nothing of it stored: an HTTP status and why."""

    def __init__(self, status: int, message: str, **extra: Any):
        super().__init__(message)
        self.status, self.extra = status, extra


class Conflict(Rejected):
    """An event id already names another event: the batch is refused and an ingest.conflict recorded."""

    def __init__(self, message: str, **details: Any):
        super().__init__(409, message, conflict=details.get("reason", "conflict"))
        self.details = details


@dataclass
class Result:
    acked: int
    stored: int
    duplicates: int
    events: list[dict[str, Any]] = field(default_factory=list)  # newly stored, for forwarding
    conflicts: int = 0  # stored seqs re-sent with different content (each an ingest.conflict event)
    # the self-inspection report the console asked this agent for and has not received yet
    # (agents.check_request, read from the row this batch locks anyway): the answer carries it
    check_requested: str | None = None


def parse_time(value: str) -> dt.datetime:
    try:
        t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Rejected(422, f"time {value!r} is not ISO 8601") from None
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


@dataclass
class Checked:
    """One event of a verified batch, with what verification already computed."""
    event: dict[str, Any]
    text: str       # the JSON stored in events.body
    hash_ok: bool   # the event hashes to the hash it claims


@dataclass
class Batch:
    agent_id: str
    batch: int
    items: list[Checked]


def row_of(event: dict[str, Any], received: dt.datetime, text: str | None = None,
           host_name: str | None = None) -> dict[str, Any]:
    """The events table's query columns, taken from the event (text: its JSON, when already made).
    host_name: the name the agent was enrolled with, which the collector trusts over the event's claim."""
    file = event.get("file") or {}
    user = event.get("user") or {}
    host = {"name": host_name} if host_name is not None else (event.get("host") or {})
    path = file.get("path")
    return {
        "event_id": event["id"], "agent_id": event["agent_id"], "seq": event["seq"],
        "time": parse_time(event["time"]), "received_at": received, "kind": event["kind"][:64],
        "severity": event["severity"], "host_name": (host.get("name") or None) and str(host["name"])[:255],
        "user_name": (user.get("name") or None) and str(user["name"])[:255],
        "level": (file.get("level") or (event.get("medium") or {}).get("level") or None),
        "action": event.get("action"),
        "file_name": os.path.basename(str(path))[:1024] if path else None,
        "file_sha256": file.get("sha256") if isinstance(file.get("sha256"), str) else None,
        "body": text if text is not None else json.dumps(event, ensure_ascii=False, sort_keys=True),
    }


class Ingest:
    def __init__(self, engine: sa.Engine, max_batch_bytes: int, max_event_bytes: int):
        self.engine = engine
        self.max_batch_bytes, self.max_event_bytes = max_batch_bytes, max_event_bytes
        self.postgres = engine.dialect.name == "postgresql"
        self._sqlite_lock = threading.Lock()  # SQLite has one writer; serialise batches in this process
        self._keys: dict[str, Ed25519PublicKey] = {}

    # -- verification -------------------------------------------------------------
    def _key(self, conn: sa.Connection, agent_id: str) -> Ed25519PublicKey:
        key = self._keys.get(agent_id)
        if key is None:
            hexkey = conn.execute(sa.select(db.agents.c.public_key).where(db.agents.c.agent_id == agent_id)).scalar()
            if hexkey is None:
                raise Rejected(401, f"unknown agent {agent_id!r}: enroll it first")
            key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(hexkey))
            self._keys[agent_id] = key
        return key

    def verify(self, raw: bytes, agent_header: str | None, signature: str | None) -> Batch:
        if len(raw) > self.max_batch_bytes:
            raise Rejected(413, f"batch of {len(raw)} bytes is over max_batch_bytes {self.max_batch_bytes}")
        if not agent_header or not signature:
            raise Rejected(401, "X-Baomi-Agent and X-Baomi-Signature headers are required")
        with self.engine.connect() as conn:
            key = self._key(conn, agent_header)
        try:
            key.verify(base64.b64decode(signature, validate=True), raw)
        except (InvalidSignature, binascii.Error, ValueError):
            raise Rejected(403, "bad signature") from None
        try:
            body = schema.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise Rejected(400, f"body is not JSON: {exc}") from None
        except ValueError as exc:
            raise Rejected(422, str(exc)) from None
        if not isinstance(body, dict):
            raise Rejected(400, "body must be a JSON object")
        if body.get("agent_id") != agent_header:
            raise Rejected(403, "agent_id in the body differs from X-Baomi-Agent")
        batch = body.get("batch")
        if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
            raise Rejected(400, "batch must be a positive integer")
        events = body.get("events")
        if not isinstance(events, list):
            raise Rejected(400, "events must be a list")
        problem = schema.check_model(schema.BatchEnvelope, {**body, "events": []})
        if problem:
            raise Rejected(422, problem)
        items = []
        for e in events:
            problem = ev.validate(e) or schema.check_event(e)
            seq = e.get("seq") if isinstance(e, dict) else None
            if problem:  # naming the seq lets the agent set that one event aside (delivery.rejected)
                raise Rejected(422, f"event seq {seq}: {problem}", **({"seq": seq} if _is_seq(seq) else {}))
            if e["agent_id"] != agent_header:
                raise Rejected(422, f"event seq {seq}: agent_id is not the sender's")
            # one serialisation serves the size limit, the hash check and the stored body
            canon = ev.canonical({k: v for k, v in e.items() if k != "hash"})
            text = canon[:-1].decode("utf-8") + ',"hash":' + json.dumps(e["hash"]) + "}"
            if len(text.encode("utf-8")) > self.max_event_bytes:
                raise Rejected(413, f"event seq {seq} is over max_event_bytes {self.max_event_bytes}", seq=seq)
            items.append(Checked(e, text, ev.hash_of(e, canon) == e["hash"]))
        return Batch(agent_header, batch, items)

    # -- storage --------------------------------------------------------------------
    def store(self, body: Batch) -> Result:
        try:
            if self.postgres:
                return self._store(body)
            with self._sqlite_lock:
                return self._store(body)
        except Conflict as exc:
            self._record_conflict(body.agent_id, exc)
            raise
        except sa.exc.IntegrityError as exc:  # an event id stored meanwhile by another agent's batch
            conflict = Conflict("an event id of this batch is already stored for another event",
                                reason="id_clash", detail=str(exc.orig)[:200])
            self._record_conflict(body.agent_id, conflict)
            raise conflict from None

    def _record_conflict(self, agent_id: str, exc: "Conflict") -> None:
        """The refused batch's transaction is rolled back: its ingest.conflict is written on its own."""
        with self.engine.begin() as conn:
            host = conn.execute(sa.select(db.agents.c.host_name).where(db.agents.c.agent_id == agent_id)).scalar()
            insert_collector_event(conn, "ingest.conflict", severity="high", host_name=host,
                                   details={"agent_id": agent_id, "error": str(exc), **exc.details})

    def _unique(self, items: list[Checked]) -> list[Checked]:
        """The batch's events once per seq; the same seq twice with different content, or the same
        id on two events, is a Conflict."""
        by_seq: dict[int, Checked] = {}
        by_id: dict[str, int] = {}
        for c in items:
            seq, eid = c.event["seq"], c.event["id"]
            prev = by_seq.get(seq)
            if prev is not None:
                if prev.text != c.text:
                    raise Conflict(f"seq {seq} twice in the batch with different content", reason="seq_twice",
                                   seq=seq)
                continue
            if eid in by_id:
                raise Conflict(f"event id {eid[:64]!r} on seq {by_id[eid]} and seq {seq}", reason="id_clash",
                               event_id=eid[:64], seqs=[by_id[eid], seq])
            by_seq[seq], by_id[eid] = c, seq
        return list(by_seq.values())

    def _stored_ids(self, conn: sa.Connection, agent_id: str, items: list[Checked]) -> None:
        """Refuse events whose id is stored already for another event (another agent, or another seq)."""
        E = db.events
        ids = [c.event["id"] for c in items]
        want = {c.event["id"]: c.event["seq"] for c in items}
        for i in range(0, len(ids), 500):
            for r in conn.execute(sa.select(E.c.event_id, E.c.agent_id, E.c.seq)
                                  .where(E.c.event_id.in_(ids[i:i + 500]))):
                if r.agent_id != agent_id or r.seq != want[r.event_id]:
                    raise Conflict(f"event id {r.event_id!r} (seq {want[r.event_id]}) is already stored for "
                                   "another event", reason="id_clash", event_id=r.event_id,
                                   seq=want[r.event_id])

    def _store(self, body: Batch) -> Result:
        agent_id, batch = body.agent_id, body.batch
        items = self._unique(sorted(body.items, key=lambda c: c.event["seq"]))
        events = [c.event for c in items]
        received = now()
        with self.engine.begin() as conn:
            q = sa.select(db.agents).where(db.agents.c.agent_id == agent_id)
            agent = conn.execute(q.with_for_update() if self.postgres else q).first()
            if agent is None:
                raise Rejected(401, f"unknown agent {agent_id!r}")
            if batch <= agent.last_batch:
                raise Rejected(409, f"batch {batch} replayed or out of order (last accepted {agent.last_batch})",
                               last_batch=agent.last_batch)
            self._stored_ids(conn, agent_id, items)
            seqs = [e["seq"] for e in events]
            have: dict[int, str] = {}
            if seqs:
                E = db.events
                have = {r.seq: r.body for r in conn.execute(
                    sa.select(E.c.seq, E.c.body).where(E.c.agent_id == agent_id)
                    .where(E.c.seq.between(seqs[0], seqs[-1])).where(E.c.seq.in_(seqs)))}
            fresh_items, conflicts = [], 0
            for c in items:
                stored_body = have.get(c.event["seq"])
                if stored_body is None:
                    fresh_items.append(c)
                elif stored_body != c.text:  # evidence is kept: the differing event goes into the record
                    conflicts += 1
                    insert_collector_event(conn, "ingest.conflict", severity="high", host_name=agent.host_name,
                                           details={"agent_id": agent_id, "reason": "seq_resent_different",
                                                    "seq": c.event["seq"], "resent": c.event})
            fresh = [c.event for c in fresh_items]
            if fresh:
                db.insert_events(conn, [row_of(c.event, received, c.text, agent.host_name) for c in fresh_items],
                                 skip_duplicates=True)
            acked, last_hash, top = self._advance(conn, agent, fresh_items)
            values: dict[str, Any] = {"last_seq": acked, "last_hash": last_hash, "last_batch": batch,
                                      "last_seen": received, "online": True, "max_seq": max(top, acked)}
            check_request = agent.check_request
            for e in fresh:
                if e["kind"] == "agent.heartbeat":
                    d = e["details"]
                    values.update(agent_version=str(d.get("version") or "")[:64] or None,
                                  policy_version=str(d.get("policy_version") or "")[:64] or None,
                                  spool_depth=d.get("spool_depth"), oldest_unsent_s=d.get("oldest_unsent_age_s"),
                                  **protection.summary(d))
                    applied = _parse_time(d.get("policy_applied_at"))
                    if applied is not None:
                        values["policy_applied_at"] = applied
                    for key in ("approvals_seq", "media_registry_version", "rules_version"):
                        held = _version(d.get(key))   # what the agent holds, as it says
                        if held is not None:
                            values[key] = held
                elif e["kind"] == "approval.requested":
                    approvals.record_request(conn, e, agent.host_name, received)
                elif e["kind"] == "approval.used":
                    approvals.record_used(conn, e)
                elif e["kind"] in ("check.report", "agent.component_failed") and check_request is not None \
                        and (e.get("details") or {}).get("requested_by_collector") == check_request:
                    check_request = None   # the report the console asked for (or its failure) has arrived
                    values.update(check_request=None, check_requested_at=None, check_requested_by=None)
            if not agent.online:
                insert_collector_event(conn, "host.online", host_name=agent.host_name,
                                       details={"agent_id": agent_id, "offline_since": str(agent.last_seen)})
            conn.execute(db.agents.update().where(db.agents.c.agent_id == agent_id).values(**values))
        return Result(acked, len(fresh), len(events) - len(fresh) - conflicts, fresh, conflicts, check_request)

    def _advance(self, conn: sa.Connection, agent: Any, fresh: list[Checked]) -> tuple[int, str, int]:
        """Move the contiguous watermark (agents.last_seq) over stored events and announced
        drops, checking each link of the chain; report each new hole once. Incremental: only the
        events the watermark passes are read, so a hole left open costs nothing per batch.
        Returns (acked, its hash, the highest stored seq)."""
        agent_id = agent.agent_id
        for c in fresh:  # a stored event must hash to what it claims, link or no link
            if not c.hash_ok:
                self._break(conn, agent, c.event["seq"], "hash mismatch")
        G = db.announced_gaps
        bodies: dict[int, dict[str, Any]] = {c.event["seq"]: c.event for c in fresh}
        gaps = {r.seq: (r.first_seq, r.last_seq) for r in conn.execute(
            sa.select(G.c.seq, G.c.first_seq, G.c.last_seq).where(G.c.agent_id == agent_id))}
        new_gaps = {q: _announced(b) for q, b in bodies.items() if b["kind"] in ANNOUNCES_DROPS and _announced(b)}
        gaps.update(new_gaps)
        top = self._report_holes(conn, agent, bodies, gaps)
        highest = max([top, *gaps])  # the highest seq stored, agent.gap events included
        s, last_hash, linked = agent.last_seq, agent.last_hash, True
        stored: dict[int, tuple[str, str]] = {}  # seq -> (prev_hash, hash) read from the store, in chunks
        while True:
            q = s + 1
            nxt = bodies.get(q)
            link = (nxt["prev_hash"], nxt["hash"]) if nxt is not None else stored.get(q)
            if link is None and q <= highest and not stored:
                stored = self._stored_links(conn, agent_id, q)
                link = stored.get(q)
            if link is not None:
                if linked and link[0] != last_hash:
                    self._break(conn, agent, q, "prev_hash does not link")
                s, last_hash, linked = q, link[1], True
                stored.pop(q, None)
                continue
            cover = next((g for g in gaps.values() if g[0] <= q <= g[1]), None)
            if cover is None:
                break
            s, linked = cover[1], False  # the dropped events' hashes are not known: the next link is not checked
            stored = {k: v for k, v in stored.items() if k > s}
        conn.execute(G.delete().where(G.c.agent_id == agent_id, G.c.seq <= s, G.c.last_seq <= s))
        keep = [{"agent_id": agent_id, "seq": q, "first_seq": g[0], "last_seq": g[1]}
                for q, g in new_gaps.items() if not (q <= s and g[1] <= s)]
        if keep:
            conn.execute(G.insert(), keep)
        return s, last_hash, top

    def _stored_links(self, conn: sa.Connection, agent_id: str, start: int) -> dict[int, tuple[str, str]]:
        """(prev_hash, hash) of the stored events from seq `start` on, while they run contiguous."""
        E = db.events
        out: dict[int, tuple[str, str]] = {}
        if conn.execute(sa.select(E.c.seq).where(E.c.agent_id == agent_id, E.c.seq == start)).first() is None:
            return out  # the usual case while a hole stays open: one index lookup
        for r in conn.execute(sa.select(E.c.seq, E.c.body).where(E.c.agent_id == agent_id, E.c.seq >= start)
                              .order_by(E.c.seq).limit(STORED_CHUNK)):
            if r.seq != start + len(out):
                break
            b = json.loads(r.body)
            out[r.seq] = (b["prev_hash"], b["hash"])
        return out

    def _report_holes(self, conn: sa.Connection, agent: Any, bodies: dict[int, dict[str, Any]],
                      gaps: dict[int, tuple[int, int]]) -> int:
        """A chain.gap for every run of seqs missing below a newly stored event and above every event
        stored before (each hole is said once, when it opens), less the drops announced and the
        agent.gap events themselves (they may travel ahead of the events before them). Returns the
        new highest stored seq (agent.gap events aside)."""
        prev = max(agent.max_seq, agent.last_seq)
        for q in sorted(bodies):
            if bodies[q]["kind"] in ANNOUNCES_DROPS or q <= prev:
                continue
            for lo, hi in _uncovered(prev + 1, q - 1, gaps):
                insert_collector_event(conn, "chain.gap", severity="high", host_name=agent.host_name,
                                       details={"agent_id": agent.agent_id, "first_missing": lo,
                                                "last_missing": hi, "next_stored": hi + 1})
            prev = q
        return prev

    def _break(self, conn: sa.Connection, agent: Any, seq: int, reason: str) -> None:
        insert_collector_event(conn, "chain.break", severity="high", host_name=agent.host_name,
                               details={"agent_id": agent.agent_id, "seq": seq, "reason": reason})


STORED_CHUNK = 1000


def _is_seq(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _announced(event: dict[str, Any]) -> tuple[int, int] | None:
    d = event.get("details") or {}
    first, last = d.get("first_seq"), d.get("last_seq")
    if isinstance(first, int) and isinstance(last, int) and first <= last:
        return first, last
    return None


def _uncovered(lo: int, hi: int, gaps: dict[int, tuple[int, int]]) -> list[tuple[int, int]]:
    """The runs of lo..hi that neither an announced drop covers nor an agent.gap event occupies."""
    spans = sorted([g for g in gaps.values() if g[1] >= lo and g[0] <= hi] + [(q, q) for q in gaps if lo <= q <= hi])
    out, at = [], lo
    for a, b in spans:
        if a > at:
            out.append((at, min(a - 1, hi)))
        at = max(at, b + 1)
        if at > hi:
            break
    if at <= hi:
        out.append((at, hi))
    return out


def _version(value: Any) -> int | None:
    """A document version (or approvals seq) an agent reports holding, or None when it is not one."""
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2 ** 62 else None


def _parse_time(value: Any) -> dt.datetime | None:
    """A heartbeat's time field, or None when absent or not a time (a hostile agent's claim
    about itself is shown, never trusted; a bad one is dropped)."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        return parse_time(value)
    except Exception:  # Rejected, or anything else a hostile string may raise
        return None
