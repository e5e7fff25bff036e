"""Copy approvals (审批) on the collector: requests arrive as `approval.requested` events
from agents; the security administrator grants or refuses each in the console, and the
decision is signed with the passphrase-sealed key (service/central.py) and delivered to
the requesting agent in its next batch answer (docs/media.md "审批")."""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, Mapping

import sqlalchemy as sa

from baomi.common import approvals as rules
from baomi.common import central as doc_rules

from . import central, db

A = db.approvals
PER_ANSWER = 20   # decisions carried by one batch answer; the rest follow in the next ones


class NotPending(ValueError):
    pass


def _json(v: Any) -> str:
    return json.dumps(v, ensure_ascii=False, sort_keys=True)


def record_request(conn: sa.Connection, event: Mapping[str, Any], host_name: str | None,
                   received: dt.datetime) -> None:
    """One `approval.requested` event stored by ingest becomes a pending request (once;
    a malformed one is kept as an event only)."""
    d, f = event.get("details") or {}, event.get("file") or {}
    rid, sha = d.get("request_id"), f.get("sha256")
    target = d.get("target")
    if not isinstance(rid, str) or not (0 < len(rid) <= 64) or not isinstance(sha, str) or len(sha) != 64 \
            or not isinstance(target, dict):
        return
    if conn.execute(sa.select(A.c.request_id).where(A.c.request_id == rid)).first() is not None:
        return
    user = event.get("user") or {}
    uid = user.get("uid")
    conn.execute(A.insert().values(
        request_id=rid, agent_id=event["agent_id"], host_name=host_name, event_id=event["id"],
        requested_at=received, user_uid=uid if isinstance(uid, int) else None,
        user_name=str(user.get("name") or "")[:255] or None, sha256=sha.lower(),
        file_name=str(f.get("name") or "")[:1024] or None, level=str(f.get("level") or "")[:32] or None,
        target=_json(target), medium=_json(event.get("medium") or {}), reason=str(d.get("reason") or "")[:2000]))


def record_used(conn: sa.Connection, event: Mapping[str, Any]) -> None:
    d = event.get("details") or {}
    used = d.get("used")
    if isinstance(d.get("approval_id"), str) and isinstance(used, int):
        conn.execute(A.update().where(A.c.request_id == d["approval_id"], A.c.agent_id == event["agent_id"],
                                      A.c.used < used).values(used=used))


@dataclass
class Decided:
    row: dict[str, Any]
    before: dict[str, Any]
    after: dict[str, Any]


def decide(engine: sa.Engine, request_id: str, decision: str, passphrase: str, by: str,
           hours: float | None = rules.DEFAULT_HOURS, copies: int | None = None, comment: str = "") -> Decided:
    """Sign the decision on a pending request and store it for delivery. NotPending /
    LookupError / ValueError (a bad field) / central.WrongPassphrase / NoSigningKey leave
    nothing stored."""
    with engine.begin() as conn:
        row = conn.execute(sa.select(A).where(A.c.request_id == request_id)).mappings().first()
        if row is None:
            raise LookupError(f"no approval request {request_id[:64]!r}")
        if row["status"] != "pending":
            raise NotPending(f"request {request_id} is already {row['status']}")
        key = central.signing_key(conn, passphrase)
        seq = int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(A.c.seq), 0))).scalar_one()) + 1
        now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        doc = rules.document(request_id=request_id, seq=seq, decision=decision, agent_id=row["agent_id"],
                             user={"uid": row["user_uid"], "name": row["user_name"]}, sha256=row["sha256"],
                             medium=json.loads(row["target"]), issued_at=now, hours=hours, copies=copies,
                             decided_by=by, comment=comment)
        env = doc_rules.sign(doc, key)
        del key
        after = {"status": decision, "decided_by": by, "expires_at": doc["expires_at"], "copies": doc["copies"],
                 "comment": doc["comment"]}
        n = conn.execute(A.update().where(A.c.request_id == request_id, A.c.status == "pending").values(
            status=decision, seq=seq, decided_by=by, decided_at=now,
            expires_at=rules.parse(doc["expires_at"]), copies=doc["copies"], comment=doc["comment"],
            document=_json(doc), signature=env["signature"])).rowcount
        if n != 1:
            raise NotPending(f"request {request_id} was decided a moment ago")
    return Decided(dict(row), {"status": "pending"}, after)


def for_agent(conn: sa.Connection, agent_id: str) -> list[dict[str, Any]]:
    """The signed decisions the agent does not hold yet (above the approvals_seq it reported)."""
    held = sa.select(db.agents.c.approvals_seq).where(db.agents.c.agent_id == agent_id).scalar_subquery()
    rows = conn.execute(sa.select(A.c.document, A.c.signature)
                        .where(A.c.agent_id == agent_id, A.c.seq.is_not(None), A.c.seq > held)
                        .order_by(A.c.seq).limit(PER_ANSWER))
    return [{"document": json.loads(r.document), "signature": r.signature} for r in rows]


def listing(conn: sa.Connection, status: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    q = sa.select(A)
    if status:
        q = q.where(A.c.status == status)
    q = q.order_by(sa.case((A.c.status == "pending", 0), else_=1), A.c.requested_at.desc()).limit(limit)
    out = []
    for r in conn.execute(q).mappings():
        item = dict(r)
        item["medium"] = json.loads(r["medium"] or "{}")
        item["target"] = json.loads(r["target"] or "{}")
        out.append(item)
    return out


def evidence_of(conn: sa.Connection, event_id: str) -> list[dict[str, Any]]:
    body = conn.execute(sa.select(db.events.c.body).where(db.events.c.event_id == event_id)).scalar()
    if not body:
        return []
    ev = (json.loads(body).get("file") or {}).get("evidence") or []
    return [e for e in ev if isinstance(e, dict)][:5]
