"""Enrolled hosts and their health; one host's page with its latest self-inspection report,
the classified files it holds at rest by level, its posture and its recent events by kind.
The system administrator names host groups (e.g. 财务部) and puts hosts in them here; the
security administrator's next signed policy version carries the membership
(docs/policy.md "Scopes")."""
from __future__ import annotations

import datetime as dt
import json
import secrets

import sqlalchemy as sa
from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from baomi.common import catalogue

from ... import central, db
from ...own_events import insert_collector_event
from .. import auth, queries, roles
from ..web import Web, remote


def router(web: Web) -> APIRouter:
    r = APIRouter(include_in_schema=False)

    def hosts_page(request: Request, status: int = 200, **extra: object) -> Response:
        with web.engine.connect() as conn:
            rows = queries.hosts(conn, web.cfg.offline_after_s)
            groups = central.groups(conn)
            signed = central.signed_groups(conn)
        weaker_only = request.query_params.get("weaker") == "1"
        extra.update(weaker_count=sum(h["weaker"] for h in rows), weaker_only=weaker_only)
        if weaker_only:      # the hosts to look at: a medium not held, workers not fully confined
            rows = [h for h in rows if h["weaker"]]
        of = {a: g for g, m in groups.items() for a in m}
        signed_of = {a: g for g, m in signed.items() for a in m}
        for h in rows:
            h["group"] = of.get(h["agent_id"])
            h["group_pending"] = of.get(h["agent_id"]) != signed_of.get(h["agent_id"])
        return web.render(request, "hosts.html", status, hosts=rows, groups=groups, **extra)

    @r.get("/hosts")
    def hosts(request: Request, s: auth.Session = web.need("hosts.view")) -> Response:
        return hosts_page(request)

    @r.post("/hosts/groups")
    def create_group(request: Request, name: str = Form(""), csrf_token: str = Form(""),
                     s: auth.Session = web.need("hosts.group")) -> Response:
        web.csrf_check(request, s, csrf_token)
        name = name.strip()
        try:
            central.create_group(web.engine, name, s.user)
        except ValueError as exc:
            return hosts_page(request, 400, error="hosts.error.group", detail=str(exc)[:200])
        web.audit("console.group_changed", user_name=s.user, action="created", group=name, remote=remote(request))
        return RedirectResponse("/hosts", status_code=303)

    @r.post("/hosts/groups/delete")
    def delete_group(request: Request, name: str = Form(""), csrf_token: str = Form(""),
                     s: auth.Session = web.need("hosts.group")) -> Response:
        web.csrf_check(request, s, csrf_token)
        try:
            members = central.delete_group(web.engine, name)
        except LookupError:
            return web.not_found(request)
        web.audit("console.group_changed", user_name=s.user, action="deleted", group=name, members=members,
                  remote=remote(request))
        return RedirectResponse("/hosts", status_code=303)

    @r.post("/hosts/{agent_id}/group")
    def set_group(request: Request, agent_id: str, group: str = Form(""), csrf_token: str = Form(""),
                  s: auth.Session = web.need("hosts.group")) -> Response:
        web.csrf_check(request, s, csrf_token)
        if len(agent_id) > 64:
            return web.not_found(request)
        try:
            before = central.assign(web.engine, agent_id, group or None, s.user)
        except LookupError:
            return web.not_found(request)
        if before != (group or None):
            with web.engine.connect() as conn:
                h = queries.hosts(conn, web.cfg.offline_after_s, agent_id=agent_id)
            web.audit("console.group_changed", user_name=s.user, action="assigned", agent_id=agent_id,
                      host_name=h[0]["host_name"] if h else None, before=before, after=group or None,
                      remote=remote(request))
        return RedirectResponse(f"/hosts/{agent_id}", status_code=303)

    def page(request: Request, agent_id: str, s: auth.Session, status: int = 200, notice: str = "") -> Response:
        if len(agent_id) > 64:
            return web.not_found(request)
        with web.engine.connect() as conn:
            h = queries.host_detail(conn, agent_id, web.cfg.offline_after_s)
            groups = central.groups(conn)
            signed = central.signed_groups(conn)
        if h is None:
            return web.not_found(request)
        security = roles.allowed(s.role, "events.view")
        if not security:  # the system administrator: health only, and which modes run, not which sticks
            p = h["protection"]
            h = {"host": h["host"], "protection": p and {**p, "media": []}}
        group = next((g for g, m in groups.items() if agent_id in m), None)
        signed_group = next((g for g, m in signed.items() if agent_id in m), None)
        lang = web.locale_of(request)
        return web.render(request, "host.html", status, h=h, security=security,
                          at_rest_levels=queries.AT_REST_LEVELS, notice=notice,
                          can_request_check=roles.allowed(s.role, "host.check_request"),
                          kind_label=lambda k: catalogue.label(k, lang), group=group, signed_group=signed_group,
                          groups=list(groups), can_group=roles.allowed(s.role, "hosts.group"))

    @r.get("/hosts/{agent_id}")
    def host(request: Request, agent_id: str, s: auth.Session = web.need("host.view")) -> Response:
        return page(request, agent_id, s)

    @r.get("/hosts/{agent_id}/check.json")
    def report_json(request: Request, agent_id: str, s: auth.Session = web.need("events.view")) -> Response:
        """The whole self-inspection report the latest check.report carried (times in UTC, as
        the host wrote it); 404 when it was too large to travel and stayed on the host."""
        if len(agent_id) > 64:
            return web.not_found(request)
        with web.engine.connect() as conn:
            row = queries.latest_of_kind(conn, queries.REPORT_KIND, agent_id).get(agent_id)
        report = row["details"].get("report") if row else None
        if not isinstance(report, dict):
            return web.not_found(request)
        body = json.dumps(report, ensure_ascii=False, sort_keys=True, indent=1)
        return Response(body, media_type="application/json", headers={
            "Content-Disposition": f'attachment; filename="check-{agent_id[:16]}.json"'})

    @r.post("/hosts/{agent_id}/check")
    def request_check(request: Request, agent_id: str, csrf_token: str = Form(""),
                      s: auth.Session = web.need("host.check_request")) -> Response:
        """立即自查: the host's next batch answer carries the request; its check.report naming the
        request clears it (service/ingest.py). A request still pending is kept, not replaced."""
        web.csrf_check(request, s, csrf_token)
        if len(agent_id) > 64:
            return web.not_found(request)
        A = db.agents
        with web.engine.begin() as conn:
            row = conn.execute(sa.select(A.c.host_name, A.c.check_request).where(A.c.agent_id == agent_id)).first()
            if row is None:
                return web.not_found(request)
            if row.check_request is not None:
                pending = True
            else:
                pending = False
                request_id = secrets.token_hex(8)
                # only where none is pending: two clicks at once make one request
                done = conn.execute(A.update().where(A.c.agent_id == agent_id, A.c.check_request.is_(None)).values(
                    check_request=request_id, check_requested_at=dt.datetime.now(dt.timezone.utc),
                    check_requested_by=s.user[:128])).rowcount
                if done:
                    insert_collector_event(conn, "console.check_requested", user_name=s.user,
                                           host_name=row.host_name, action="request",
                                           details={"agent_id": agent_id, "request_id": request_id,
                                                    "remote": remote(request)})
                else:
                    pending = True
        if pending:
            return page(request, agent_id, s, 409, notice="host.check_request_pending")
        return page(request, agent_id, s, 201, notice="host.check_request_sent")

    return r
