"""Enrolled hosts and their health; one host's page with its latest self-inspection report,
the classified files it holds at rest by level, its posture and its recent events by kind."""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from baomi.common import catalogue

from .. import auth, queries, roles
from ..web import Web


def router(web: Web) -> APIRouter:
    r = APIRouter(include_in_schema=False)

    @r.get("/hosts")
    def hosts(request: Request, s: auth.Session = web.need("hosts.view")) -> Response:
        with web.engine.connect() as conn:
            rows = queries.hosts(conn, web.cfg.offline_after_s)
        return web.render(request, "hosts.html", hosts=rows)

    @r.get("/hosts/{agent_id}")
    def host(request: Request, agent_id: str, s: auth.Session = web.need("host.view")) -> Response:
        if len(agent_id) > 64:
            return web.not_found(request)
        with web.engine.connect() as conn:
            h = queries.host_detail(conn, agent_id, web.cfg.offline_after_s)
        if h is None:
            return web.not_found(request)
        security = roles.allowed(s.role, "events.view")
        if not security:  # the system administrator: health only
            h = {"host": h["host"]}
        lang = web.locale_of(request)
        return web.render(request, "host.html", h=h, security=security, at_rest_levels=queries.AT_REST_LEVELS,
                          kind_label=lambda k: catalogue.label(k, lang))

    return r
