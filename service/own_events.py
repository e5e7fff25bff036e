"""Writing events that the collector itself originates (console actions, offline
hosts, chain breaks) into the same `events` table as agent events."""
from __future__ import annotations

import datetime as dt
import json
from typing import Any

import sqlalchemy as sa

from baomi.common import events as ev

from . import db

COLLECTOR_AGENT_ID = "collector"


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def insert_collector_event(
    conn: sa.Connection,
    kind: str,
    *,
    severity: str = "info",
    user_name: str | None = None,
    host_name: str | None = None,
    action: str | None = None,
    details: dict[str, Any] | None = None,
) -> str:
    """Insert one collector-made event (agent_id "collector", no seq); returns its id.
    The caller's transaction decides when it is committed."""
    event = ev.make_event(kind, severity=severity, action=action, details=details or {},
                          user={"uid": None, "name": user_name, "session": None} if user_name else None,
                          host={"id": COLLECTOR_AGENT_ID, "name": host_name or "collector", "class": None})
    event.update(seq=None, agent_id=COLLECTOR_AGENT_ID, prev_hash="", hash="")
    stamp = now()
    db.insert_events(conn, [dict(
        event_id=event["id"], agent_id=COLLECTOR_AGENT_ID, seq=None, time=stamp, received_at=stamp,
        kind=kind, severity=severity, host_name=host_name, user_name=user_name, level=None,
        action=action, file_name=None, file_sha256=None,
        body=json.dumps(event, ensure_ascii=False))])
    return event["id"]

