"""Enrollment: one-time, expiring tokens (only their sha256 is stored) that an
agent presents once with its public key; afterwards the key alone identifies it."""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import secrets
from typing import Any

import sqlalchemy as sa

from baomi.common.keys import agent_id_for

from . import db
from .own_events import insert_collector_event, now


class EnrollError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class EnrollRefused(EnrollError):
    """409: refused for a reason the sysadmin must see (recorded as agent.enroll_refused)."""

    def __init__(self, message: str, **details: Any):
        super().__init__(409, message)
        self.details = details


def record_refusal(engine: sa.Engine, exc: EnrollRefused, remote: str) -> None:
    """The refused enrollment's transaction was rolled back: its event is written on its own."""
    with engine.begin() as conn:
        insert_collector_event(conn, "agent.enroll_refused", severity="high",
                               host_name=exc.details.get("host_name"),
                               details={**exc.details, "error": str(exc), "remote": remote})


def approve_reenrollment(engine: sa.Engine, agent_id: str, by: str = "cli") -> str:
    """Let an enrolled agent enroll once more (a reinstalled PC keeping its key); returns its host name."""
    with engine.begin() as conn:
        host = conn.execute(sa.select(db.agents.c.host_name).where(db.agents.c.agent_id == agent_id)).scalar()
        if host is None:
            raise EnrollError(404, f"no enrolled agent {agent_id!r}")
        conn.execute(db.agents.update().where(db.agents.c.agent_id == agent_id).values(reenroll_approved_by=by))
        insert_collector_event(conn, "agent.reenroll_approved", severity="medium", user_name=by, host_name=host,
                               details={"agent_id": agent_id})
    return host


def new_token() -> str:
    """A fresh enrollment token (256 random bits, URL-safe). Never one that starts with
    "-": `baomi-agent enroll --token -x…` would take it for an option and fail with
    "expected one argument", one token in 64."""
    while True:
        token = secrets.token_urlsafe(32)
        if not token.startswith("-"):
            return token


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(engine: sa.Engine, ttl_s: int, created_by: str = "cli", host_name: str | None = None,
                 host_class: str | None = None) -> tuple[str, dt.datetime]:
    """A one-time token; with host_name (and host_class) the host it enrolls gets that name and
    class whatever the agent says of itself."""
    (token, expires), = create_tokens(engine, ttl_s, [(host_name, host_class)], created_by)
    return token, expires


def create_tokens(engine: sa.Engine, ttl_s: int, hosts: list[tuple[str | None, str | None]],
                  created_by: str = "cli") -> list[tuple[str, dt.datetime]]:
    """One token per (host_name, host_class) entry, all in one transaction: a rollout gets
    all of its tokens or none. Each is recorded as collector.token_created."""
    created = now()
    expires = created + dt.timedelta(seconds=ttl_s)
    out = []
    with engine.begin() as conn:
        for host_name, host_class in hosts:
            token = new_token()
            conn.execute(db.enroll_tokens.insert().values(token_hash=token_hash(token), created_at=created,
                                                          expires_at=expires, created_by=created_by,
                                                          host_name=host_name, host_class=host_class))
            insert_collector_event(conn, "collector.token_created", user_name=created_by,
                                   details={"token_sha256_prefix": token_hash(token)[:12],
                                            "expires_at": expires.isoformat(), "host_name": host_name,
                                            "host_class": host_class})
            out.append((token, expires))
    return out


def _aware(t: dt.datetime | None) -> dt.datetime | None:
    return t.replace(tzinfo=dt.timezone.utc) if t is not None and t.tzinfo is None else t


def enroll(engine: sa.Engine, body: Any) -> dict[str, Any]:
    """Check the token, bind the agent's key; EnrollError(status, message) otherwise."""
    if not isinstance(body, dict):
        raise EnrollError(400, "body must be a JSON object")
    token, pub_b64, claimed = body.get("token"), body.get("public_key"), body.get("agent_id")
    host = body.get("host") or {}
    if not isinstance(token, str) or not token:
        raise EnrollError(400, "token missing")
    if not isinstance(pub_b64, str) or not isinstance(host, dict):
        raise EnrollError(400, "public_key (base64) and host {name, class} are required")
    try:
        public = base64.b64decode(pub_b64, validate=True)
    except (binascii.Error, ValueError):
        raise EnrollError(400, "public_key is not base64") from None
    if len(public) != 32:
        raise EnrollError(400, "public_key must be a raw 32-byte Ed25519 key")
    agent_id = agent_id_for(public)
    if claimed != agent_id:
        raise EnrollError(400, "agent_id does not belong to public_key")
    name = str(host.get("name") or "")[:255] or agent_id
    host_class = host.get("class") if host.get("class") in ("classified", "unclassified") else "unclassified"
    stamp = now()
    with engine.begin() as conn:
        row = conn.execute(sa.select(db.enroll_tokens).where(db.enroll_tokens.c.token_hash == token_hash(token))
                           .with_for_update()).first()
        if row is None:
            raise EnrollError(401, "unknown enrollment token")
        if row.used_at is not None:
            raise EnrollError(401, "enrollment token already used")
        if _aware(row.expires_at) < stamp:
            raise EnrollError(401, "enrollment token expired")
        claimed_name = name
        if row.host_name:  # the sysadmin named the host when making the token: that name counts
            name = row.host_name
        if row.host_class:
            host_class = row.host_class
        existing = conn.execute(sa.select(db.agents).where(db.agents.c.agent_id == agent_id)).first()
        if existing is not None and existing.public_key != public.hex():
            raise EnrollError(409, "agent id already enrolled with another key")
        if existing is not None and not existing.reenroll_approved_by:
            raise EnrollRefused("this agent is enrolled already; enrolling it again needs the sysadmin's "
                                f"approval (baomi-collector agents approve {agent_id})",
                                host_name=existing.host_name, agent_id=agent_id, reason="reenroll_not_approved",
                                claimed_host=name)
        other = conn.execute(sa.select(db.agents.c.agent_id).where(db.agents.c.host_name == name)
                             .where(db.agents.c.agent_id != agent_id)).first()
        if other is not None:
            raise EnrollRefused(f"host name {name!r} belongs to another enrolled agent", host_name=name,
                                agent_id=agent_id, reason="duplicate_host_name", enrolled_agent=other.agent_id)
        done = conn.execute(db.enroll_tokens.update().where(db.enroll_tokens.c.token_hash == row.token_hash)
                            .where(db.enroll_tokens.c.used_at.is_(None)).values(used_at=stamp, used_by=agent_id))
        if done.rowcount != 1:
            raise EnrollError(401, "enrollment token already used")
        if existing is None:
            conn.execute(db.agents.insert().values(agent_id=agent_id, public_key=public.hex(), host_name=name,
                                                   host_class=host_class, enrolled_at=stamp, last_seen=stamp,
                                                   agent_version=str(body.get("version") or "")[:64]))
        else:
            conn.execute(db.agents.update().where(db.agents.c.agent_id == agent_id)
                         .values(host_name=name, host_class=host_class, last_seen=stamp, reenroll_approved_by=None))
        details = {"agent_id": agent_id, "class": host_class, "re_enrolled": existing is not None,
                   "name_from": "token" if row.host_name else "agent"}
        if claimed_name != name:
            details["claimed_host"] = claimed_name
        if existing is not None:
            details.update(approved_by=existing.reenroll_approved_by, previous_host=existing.host_name)
        insert_collector_event(conn, "agent.enrolled", host_name=name, details=details)
    return {"agent_id": agent_id, "enrolled_at": stamp.isoformat()}


def list_tokens(engine: sa.Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(db.enroll_tokens).order_by(db.enroll_tokens.c.created_at)))


def revoke(engine: sa.Engine, prefix: str) -> int:
    """Expire unused tokens whose hash starts with prefix (as `token list` shows them)."""
    if len(prefix) < 6:
        raise EnrollError(400, "give at least 6 characters of the token hash")
    with engine.begin() as conn:
        n = conn.execute(db.enroll_tokens.update().where(db.enroll_tokens.c.token_hash.startswith(prefix))
                         .where(db.enroll_tokens.c.used_at.is_(None)).values(expires_at=now())).rowcount
        if n:
            insert_collector_event(conn, "collector.token_revoked", details={"token_sha256_prefix": prefix})
    return n
