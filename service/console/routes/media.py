"""Removable media seen in the last 30 days."""
from __future__ import annotations

import datetime as dt
import json
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import Response

from ... import db
from .. import auth, queries
from ..web import Web


def router(web: Web) -> APIRouter:
    r = APIRouter(include_in_schema=False)

    @r.get("/media")
    def media(request: Request, s: auth.Session = web.need("media.view")) -> Response:
        E = db.events
        since = auth.now() - dt.timedelta(days=30)
        seen: dict[tuple, dict[str, Any]] = {}
        with web.engine.connect() as conn:
            stmt = (sa.select(E.c.time, E.c.kind, E.c.host_name, E.c.action, E.c.body)
                    .where(E.c.received_at >= since, E.c.kind.like("medium.%"))
                    .order_by(E.c.received_at.desc()).limit(5000))
            for row in conn.execute(stmt):
                m = json.loads(row.body).get("medium") or {}
                key = (m.get("vendor"), m.get("product"), m.get("serial"), m.get("fs_uuid"))
                item = seen.setdefault(key, {"medium": m, "last": queries.utc(row.time), "host": row.host_name,
                                             "action": row.action, "kind": row.kind, "count": 0, "hosts": set()})
                item["count"] += 1
                item["hosts"].add(row.host_name)
        return web.render(request, "media.html", media=list(seen.values()))

    return r
