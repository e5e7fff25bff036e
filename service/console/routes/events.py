"""Events: the filtered list, one event's evidence, triage, CSV and JSON exports."""
from __future__ import annotations

import csv
import io
import json
from typing import Any, Iterator
from urllib.parse import urlencode

import sqlalchemy as sa
from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from baomi.common import catalogue

from ... import db
from ...own_events import insert_collector_event
from .. import auth, queries, roles
from ..web import Web, remote

# Keys that could carry matched text; the console never shows them (evidence is hashes only).
_HIDDEN_DETAIL_KEYS = {"text", "snippet", "match", "matched", "content", "excerpt"}

EXPORT_COLUMNS = ("time", "kind", "severity", "host_name", "user_name", "level", "action", "file_name",
                  "file_sha256", "status", "event_id", "agent_id", "seq", "received_at")


def _export_value(row: dict[str, Any], column: str) -> Any:
    value = row[column]
    if column in ("time", "received_at"):
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value


_FORMULA_START = ("=", "+", "-", "@")


def _csv_cell(value: Any) -> Any:
    """Keep spreadsheets from running a cell as a formula (file names are user-controlled): a cell
    that starts with a formula character, or with any white space or control character (behind which
    a spreadsheet may still find a formula: " =cmd", "\n=cmd"), gets a leading apostrophe."""
    if isinstance(value, str) and value and (value[0] in _FORMULA_START or value[0].isspace()
                                             or ord(value[0]) < 32 or value[0] == "\x7f"):
        return "'" + value
    return "" if value is None else value


def _stamp() -> str:
    return auth.now().strftime("%Y%m%dT%H%M%SZ")


def _is_audit_row(row: Any) -> bool:
    """The console's own audit trail (console.* events the collector made): the auditor's, never altered."""
    return row["agent_id"] == "collector" and row["kind"].startswith("console.")


def router(web: Web) -> APIRouter:
    r = APIRouter(include_in_schema=False)
    engine = web.engine

    @r.get("/events")
    def events(request: Request, s: auth.Session = web.need("events.view")) -> Response:
        params = request.query_params
        f = queries.parse_filter(params, web.tz)
        sort = params.get("sort", "time_desc")
        cursor = params.get("cursor") or None
        with engine.connect() as conn:
            page = queries.list_events(conn, f, cursor, sort)
            queries.add_body_facts(conn, page.rows)
        for row in page.rows:
            row["skewed"] = queries.skewed(row, web.cfg.max_clock_skew_s)
        keep = f.params()
        if sort != "time_desc":
            keep["sort"] = sort
        next_url = "/events?" + urlencode({**keep, "cursor": page.next_cursor}) if page.next_cursor else None
        return web.render(request, "events.html", f=f, page=page, sort=sort, next_url=next_url,
                          first_url="/events?" + urlencode(keep), query=urlencode(keep), paged=bool(cursor))

    def export_start(request: Request, s: auth.Session, fmt: str) -> tuple[queries.EventFilter, str]:
        f = queries.parse_filter(request.query_params, web.tz)
        queries.event_conditions(f)  # any FilterError now, as a 400 page, not after the download began
        sort = request.query_params.get("sort", "time_desc")
        if sort not in queries.SORTS:
            raise queries.FilterError("sort", f"{sort[:40]!r} is not one of {', '.join(queries.SORTS)}")
        web.audit("console.export", user_name=s.user, format=fmt, filter=f.params(), sort=sort,
                  remote=remote(request))
        return f, sort

    def download(rows: Iterator[str], media_type: str, ext: str) -> StreamingResponse:
        return StreamingResponse(rows, media_type=media_type, headers={
            "Content-Disposition": f'attachment; filename="baomi-events-{_stamp()}.{ext}"'})

    @r.get("/events/export.csv")
    def export_csv(request: Request, s: auth.Session = web.need("events.export")) -> Response:
        f, sort = export_start(request, s, "csv")

        def rows() -> Iterator[str]:
            buf = io.StringIO()
            w = csv.writer(buf)
            w.writerow(EXPORT_COLUMNS)
            with engine.connect() as conn:
                for i, row in enumerate(queries.iter_events(conn, f, sort)):
                    w.writerow([_csv_cell(_export_value(row, c)) for c in EXPORT_COLUMNS])
                    if i % 500 == 0:
                        yield buf.getvalue()
                        buf.seek(0)
                        buf.truncate()
            yield buf.getvalue()
        return download(rows(), "text/csv; charset=utf-8", "csv")

    @r.get("/events/export.json")
    def export_json(request: Request, s: auth.Session = web.need("events.export")) -> Response:
        f, sort = export_start(request, s, "json")

        def rows() -> Iterator[str]:
            yield "["
            with engine.connect() as conn:
                for i, row in enumerate(queries.iter_events(conn, f, sort)):
                    item = {c: _export_value(row, c) for c in EXPORT_COLUMNS}
                    item["event"] = json.loads(row["body"])
                    yield ("," if i else "") + "\n" + json.dumps(item, ensure_ascii=False)
            yield "\n]\n"
        return download(rows(), "application/json", "json")

    @r.get("/events/{pk}")
    def event_detail(request: Request, pk: int, s: auth.Session = web.need("events.view")) -> Response:
        if not 0 < pk < 2**63:
            return web.not_found(request)
        with engine.begin() as conn:
            row = queries.get_event(conn, pk)
            if row is None or _is_audit_row(row):
                return web.not_found(request)
            history = queries.triage_history(conn, pk)
            insert_collector_event(conn, "console.evidence_viewed", user_name=s.user,
                                   details={"event_pk": pk, "event_id": row["event_id"], "remote": remote(request)})
        body = json.loads(row["body"])
        file = body.get("file") or None
        details = {k: v for k, v in (body.get("details") or {}).items() if k.lower() not in _HIDDEN_DETAIL_KEYS}
        return web.render(request, "event.html", e=row, body=body, file=file, medium=body.get("medium") or None,
                          evidence=(file or {}).get("evidence") or [], details=details, history=history,
                          skewed=queries.skewed(row, web.cfg.max_clock_skew_s),
                          actionable=catalogue.needs_handling(row["kind"], row["severity"], row["action"]),
                          can_triage=roles.allowed(s.role, "events.triage"))

    @r.post("/events/{pk}/triage")
    def triage(request: Request, pk: int, status: str = Form(""), comment: str = Form(""),
               csrf_token: str = Form(""), s: auth.Session = web.need("events.triage")) -> Response:
        web.csrf_check(request, s, csrf_token)
        if status not in queries.TRIAGE_STATUSES:
            raise queries.FilterError("status", f"{status[:40]!r} is not one of "
                                                f"{', '.join(queries.TRIAGE_STATUSES)}")
        if not 0 < pk < 2**63:
            return web.not_found(request)
        if len(comment) > 4000:
            raise queries.FilterError("comment", "too long (at most 4000 characters)")
        with engine.begin() as conn:
            E = db.events
            row = conn.execute(sa.select(E.c.status, E.c.agent_id, E.c.kind, E.c.severity, E.c.action)
                               .where(E.c.pk == pk)).first()
            if row is None or _is_audit_row(row._mapping):  # the same answer: no hint that the pk exists
                return web.not_found(request)
            if not catalogue.needs_handling(row.kind, row.severity, row.action):
                # a heartbeat, a start, a mount...: nothing to handle, so no triage state to change
                return web.render(request, "error.html", 409, message_key="error.not_actionable",
                                  detail=f"{row.kind}: {catalogue.label(row.kind, web.locale_of(request))}")
            old = row.status
            now = auth.now()
            conn.execute(db.triage.insert().values(event_pk=pk, status=status, comment=comment,
                                                   user_name=s.user, time=now))
            conn.execute(db.events.update().where(db.events.c.pk == pk).values(status=status))
            insert_collector_event(conn, "console.triage", user_name=s.user,
                                   details={"event_pk": pk, "from": old, "to": status, "comment": comment,
                                            "remote": remote(request)})
        return RedirectResponse(f"/events/{pk}", status_code=303)

    return r
