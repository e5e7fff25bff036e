"""The auditor's view of the console's own audit trail."""
from __future__ import annotations

import json
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from .. import auth, queries
from ..web import Web


def router(web: Web) -> APIRouter:
    r = APIRouter(include_in_schema=False)

    @r.get("/audit")
    def audit(request: Request, user: str = "", cursor: str = "",
              s: auth.Session = web.need("audit.view")) -> Response:
        if len(user) > queries.MAX_TEXT:
            raise queries.FilterError("user", f"too long (at most {queries.MAX_TEXT} characters)")
        with web.engine.connect() as conn:
            page = queries.audit_trail(conn, user, cursor or None)
        for row in page.rows:
            row["details"] = json.loads(row["body"]).get("details") or {}
        keep = {"user": user} if user else {}
        next_url = "/audit?" + urlencode({**keep, "cursor": page.next_cursor}) if page.next_cursor else None
        return web.render(request, "audit.html", page=page, user=user, next_url=next_url)

    return r
