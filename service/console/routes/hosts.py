"""Enrolled hosts and their health."""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from .. import auth, queries
from ..web import Web


def router(web: Web) -> APIRouter:
    r = APIRouter(include_in_schema=False)

    @r.get("/hosts")
    def hosts(request: Request, s: auth.Session = web.need("hosts.view")) -> Response:
        with web.engine.connect() as conn:
            rows = queries.hosts(conn, web.cfg.offline_after_s)
        return web.render(request, "hosts.html", hosts=rows)

    return r
