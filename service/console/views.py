"""The console's pages and actions. Every handler names the permission it needs
(roles.PERMISSIONS); every POST checks the session's CSRF token; every action
worth auditing writes a console.* event in the same transaction as its effect."""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import secrets
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlencode

import sqlalchemy as sa
from fastapi import Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from baomi.common import policy as agent_policy
from baomi.common.events import ACTIONS, SEVERITIES
from baomi.common.levels import LEVEL_IDS, Level

from .. import db
from ..config import CollectorConfig
from ..store import insert_collector_event
from . import auth, charts, i18n, queries, roles, rollup

HERE = Path(__file__).parent
SESSION_COOKIE = "baomi_session"
LOGIN_CSRF_COOKIE = "baomi_login_csrf"
STATIC_PREFIX = "/console/static"
# Keys that could carry matched text; the console never shows them (evidence is hashes only).
_HIDDEN_DETAIL_KEYS = {"text", "snippet", "match", "matched", "content", "excerpt"}
CONSOLE_PATHS = ("/login", "/logout", "/lang", "/dashboard", "/events", "/hosts", "/audit", "/tokens",
                 "/settings", "/media", "/policy", STATIC_PREFIX)


class LoginRequired(Exception):
    pass


class Forbidden(Exception):
    def __init__(self, permission: str) -> None:
        self.permission = permission


def install(app: FastAPI, cfg: CollectorConfig, engine: sa.Engine) -> None:
    env = Environment(loader=FileSystemLoader(HERE / "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True))
    env.globals.update(static=STATIC_PREFIX, roles=roles, LEVEL_IDS=LEVEL_IDS, SEVERITIES=SEVERITIES,
                       ACTIONS=ACTIONS, STATUSES=queries.TRIAGE_STATUSES)
    env.filters["ts"] = lambda t: t.strftime("%Y-%m-%d %H:%M:%S") if t else ""
    env.filters["json"] = lambda v: json.dumps(v, ensure_ascii=False, sort_keys=True)
    secure_cookies = cfg.tls.cert is not None

    # ------------------------------------------------------------ plumbing

    def session_of(request: Request) -> auth.Session | None:
        if not hasattr(request.state, "console_session"):
            request.state.console_session = auth.lookup(engine, cfg.console,
                                                        request.cookies.get(SESSION_COOKIE))
        return request.state.console_session

    def remote(request: Request) -> str:
        return request.client.host if request.client else ""

    def need(permission: str):
        def dep(request: Request) -> auth.Session:
            s = session_of(request)
            if s is None:
                raise LoginRequired()
            if not roles.allowed(s.role, permission):
                with engine.begin() as conn:
                    insert_collector_event(conn, "console.forbidden", severity="medium", user_name=s.user,
                                           details={"role": s.role, "permission": permission,
                                                    "method": request.method, "path": request.url.path[:200],
                                                    "remote": remote(request)})
                raise Forbidden(permission)
            return s
        return Depends(dep)

    def locale_of(request: Request) -> str:
        return i18n.choose(request.cookies.get(i18n.COOKIE), request.headers.get("accept-language"))

    def render(request: Request, template: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        lang = locale_of(request)
        t = i18n.translator(lang)
        s = session_of(request)
        nav = [(path, t(label)) for perm, path, label in roles.NAV if s and roles.allowed(s.role, perm)]
        body = env.get_template(template).render(
            request=request, t=t, lang=lang, session=s, nav=nav, path=request.url.path,
            here=str(request.url.path) + (("?" + request.url.query) if request.url.query else ""),
            level_name=lambda lv: t(f"level.{lv}") if lv else "", **ctx)
        return HTMLResponse(body, status_code=status)

    def csrf_check(request: Request, s: auth.Session, token: str) -> None:
        if not s.csrf_ok(token):
            with engine.begin() as conn:
                insert_collector_event(conn, "console.csrf_rejected", severity="medium", user_name=s.user,
                                       details={"path": request.url.path[:200], "remote": remote(request)})
            raise Forbidden("csrf")

    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, exc: LoginRequired) -> Response:
        if request.method == "GET":
            return RedirectResponse("/login?" + urlencode({"next": _local_path(str(request.url.path) + (
                "?" + request.url.query if request.url.query else ""))}), status_code=303)
        return render(request, "error.html", 401, message_key="error.login_required")

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        key = "error.csrf" if exc.permission == "csrf" else "error.forbidden"
        return render(request, "error.html", 403, message_key=key)

    @app.exception_handler(queries.FilterError)
    async def _bad_filter(request: Request, exc: queries.FilterError) -> Response:
        return render(request, "error.html", 400, message_key="error.bad_filter",
                      detail=f"{exc.field}: {exc.message}")

    @app.middleware("http")
    async def _security_headers(request: Request, call_next):
        response = await call_next(request)
        if request.url.path == "/" or request.url.path.startswith(CONSOLE_PATHS):
            response.headers.setdefault(
                "Content-Security-Policy",
                "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
                "frame-ancestors 'none'; base-uri 'none'")
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
            response.headers.setdefault("Referrer-Policy", "same-origin")
            response.headers.setdefault("X-Frame-Options", "DENY")
            if not request.url.path.startswith(STATIC_PREFIX):
                response.headers.setdefault("Cache-Control", "no-store")
        return response

    app.mount(STATIC_PREFIX, StaticFiles(directory=HERE / "static"), name="console-static")

    def cookie(response: Response, name: str, value: str, max_age: int | None = None) -> None:
        response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="strict",
                            secure=secure_cookies, path="/")

    # ------------------------------------------------------------ login

    @app.get("/", include_in_schema=False)
    def root(request: Request) -> Response:
        s = session_of(request)
        return RedirectResponse(roles.home(s.role) if s else "/login", status_code=303)

    @app.get("/login", include_in_schema=False)
    def login_page(request: Request, next: str = "") -> Response:
        token = auth.login_csrf()
        response = render(request, "login.html", csrf=token, next=_local_path(next), error=None)
        cookie(response, LOGIN_CSRF_COOKIE, token, max_age=3600)
        return response

    @app.post("/login", include_in_schema=False)
    def login_post(request: Request, username: str = Form(""), password: str = Form(""),
                   csrf_token: str = Form(""), next: str = Form("")) -> Response:
        expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if not expected or not secrets.compare_digest(expected, csrf_token):
            with engine.begin() as conn:
                insert_collector_event(conn, "console.csrf_rejected", severity="medium",
                                       user_name=username[:128] or None,
                                       details={"path": "/login", "remote": remote(request)})
            return render(request, "error.html", 403, message_key="error.csrf")
        result = auth.login(engine, cfg.console, username, password, remote(request))
        if result.token is None:
            fresh = auth.login_csrf()
            error = "login.locked" if result.reason == "locked" else "login.failed"
            response = render(request, "login.html", 401, csrf=fresh, next=_local_path(next), error=error)
            cookie(response, LOGIN_CSRF_COOKIE, fresh, max_age=3600)
            return response
        s = auth.lookup(engine, cfg.console, result.token)
        target = _local_path(next) or roles.home(s.role if s else "")
        response = RedirectResponse(target, status_code=303)
        cookie(response, SESSION_COOKIE, result.token)
        response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
        return response

    @app.post("/logout", include_in_schema=False)
    def logout(request: Request, csrf_token: str = Form("")) -> Response:
        s = session_of(request)
        if s is None:
            raise LoginRequired()
        csrf_check(request, s, csrf_token)
        auth.logout(engine, s, remote(request))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @app.get("/lang/{code}", include_in_schema=False)
    def set_lang(code: str, next: str = "/") -> Response:
        response = RedirectResponse(_local_path(next) or "/", status_code=303)
        if code in i18n.LOCALES:
            response.set_cookie(i18n.COOKIE, code, max_age=365 * 86400, samesite="lax", path="/")
        return response

    # ------------------------------------------------------------ dashboard

    @app.get("/dashboard", include_in_schema=False)
    def dashboard(request: Request, period: str = "24h", s: auth.Session = need("dashboard.view")) -> Response:
        if period not in queries.PERIODS:
            raise queries.FilterError("period", f"{period[:20]!r} is not one of {', '.join(queries.PERIODS)}")
        rollup.refresh(engine)
        with engine.connect() as conn:
            data = queries.dashboard(conn, period, cfg.offline_after_s)
        t = i18n.translator(locale_of(request))
        chart = charts.stacked_bars(data["labels"], data["series"], title=t("dashboard.chart_title"),
                                    names={sv: t(f"severity.{sv}") for sv in SEVERITIES})
        return render(request, "dashboard.html", d=data, chart=chart, periods=list(queries.PERIODS))

    # ------------------------------------------------------------ events

    @app.get("/events", include_in_schema=False)
    def events(request: Request, s: auth.Session = need("events.view")) -> Response:
        params = request.query_params
        f = queries.parse_filter(params)
        sort = params.get("sort", "time_desc")
        cursor = params.get("cursor") or None
        with engine.connect() as conn:
            page = queries.list_events(conn, f, cursor, sort)
        keep = f.params()
        if sort != "time_desc":
            keep["sort"] = sort
        next_url = "/events?" + urlencode({**keep, "cursor": page.next_cursor}) if page.next_cursor else None
        return render(request, "events.html", f=f, page=page, sort=sort, next_url=next_url,
                      first_url="/events?" + urlencode(keep), query=urlencode(keep), paged=bool(cursor))

    @app.get("/events/export.csv", include_in_schema=False)
    def export_csv(request: Request, s: auth.Session = need("events.export")) -> Response:
        f, sort = _export_start(request, s, "csv")

        def rows() -> Iterator[str]:
            buf = io.StringIO()
            w = csv.writer(buf)
            w.writerow(EXPORT_COLUMNS)
            with engine.connect() as conn:
                for i, r in enumerate(queries.iter_events(conn, f, sort)):
                    w.writerow([_csv_cell(_export_value(r, c)) for c in EXPORT_COLUMNS])
                    if i % 500 == 0:
                        yield buf.getvalue()
                        buf.seek(0)
                        buf.truncate()
            yield buf.getvalue()
        return StreamingResponse(rows(), media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="baomi-events-{_stamp()}.csv"'})

    @app.get("/events/export.json", include_in_schema=False)
    def export_json(request: Request, s: auth.Session = need("events.export")) -> Response:
        f, sort = _export_start(request, s, "json")

        def rows() -> Iterator[str]:
            yield "["
            with engine.connect() as conn:
                for i, r in enumerate(queries.iter_events(conn, f, sort)):
                    item = {c: _export_value(r, c) for c in EXPORT_COLUMNS}
                    item["event"] = json.loads(r["body"])
                    yield ("," if i else "") + "\n" + json.dumps(item, ensure_ascii=False)
            yield "\n]\n"
        return StreamingResponse(rows(), media_type="application/json", headers={
            "Content-Disposition": f'attachment; filename="baomi-events-{_stamp()}.json"'})

    def _export_start(request: Request, s: auth.Session, fmt: str) -> tuple[queries.EventFilter, str]:
        f = queries.parse_filter(request.query_params)
        sort = request.query_params.get("sort", "time_desc")
        if sort not in queries.SORTS:
            raise queries.FilterError("sort", f"{sort[:40]!r} is not one of {', '.join(queries.SORTS)}")
        with engine.begin() as conn:
            insert_collector_event(conn, "console.export", user_name=s.user,
                                   details={"format": fmt, "filter": f.params(), "sort": sort,
                                            "remote": remote(request)})
        return f, sort

    @app.get("/events/{pk}", include_in_schema=False)
    def event_detail(request: Request, pk: int, s: auth.Session = need("events.view")) -> Response:
        if not 0 < pk < 2**63:
            return render(request, "error.html", 404, message_key="error.not_found")
        with engine.begin() as conn:
            row = queries.get_event(conn, pk)
            if row is None or (row["agent_id"] == "collector" and row["kind"].startswith("console.")):
                return render(request, "error.html", 404, message_key="error.not_found")
            history = queries.triage_history(conn, pk)
            insert_collector_event(conn, "console.evidence_viewed", user_name=s.user,
                                   details={"event_pk": pk, "event_id": row["event_id"], "remote": remote(request)})
        body = json.loads(row["body"])
        file = body.get("file") or None
        details = {k: v for k, v in (body.get("details") or {}).items() if k.lower() not in _HIDDEN_DETAIL_KEYS}
        return render(request, "event.html", e=row, body=body, file=file, medium=body.get("medium") or None,
                      evidence=(file or {}).get("evidence") or [], details=details, history=history,
                      can_triage=roles.allowed(s.role, "events.triage"))

    @app.post("/events/{pk}/triage", include_in_schema=False)
    def triage(request: Request, pk: int, status: str = Form(""), comment: str = Form(""),
               csrf_token: str = Form(""), s: auth.Session = need("events.triage")) -> Response:
        csrf_check(request, s, csrf_token)
        if status not in queries.TRIAGE_STATUSES:
            raise queries.FilterError("status", f"{status[:40]!r} is not one of "
                                                f"{', '.join(queries.TRIAGE_STATUSES)}")
        if not 0 < pk < 2**63:
            return render(request, "error.html", 404, message_key="error.not_found")
        if len(comment) > 4000:
            raise queries.FilterError("comment", "too long (at most 4000 characters)")
        with engine.begin() as conn:
            old = conn.execute(sa.select(db.events.c.status).where(db.events.c.pk == pk)).scalar()
            if old is None:
                return render(request, "error.html", 404, message_key="error.not_found")
            now = auth.now()
            conn.execute(db.triage.insert().values(event_pk=pk, status=status, comment=comment,
                                                   user_name=s.user, time=now))
            conn.execute(db.events.update().where(db.events.c.pk == pk).values(status=status))
            insert_collector_event(conn, "console.triage", user_name=s.user,
                                   details={"event_pk": pk, "from": old, "to": status, "comment": comment,
                                            "remote": remote(request)})
        return RedirectResponse(f"/events/{pk}", status_code=303)

    # ------------------------------------------------------------ hosts, audit

    @app.get("/hosts", include_in_schema=False)
    def hosts(request: Request, s: auth.Session = need("hosts.view")) -> Response:
        with engine.connect() as conn:
            rows = queries.hosts(conn, cfg.offline_after_s)
        return render(request, "hosts.html", hosts=rows)

    @app.get("/audit", include_in_schema=False)
    def audit(request: Request, user: str = "", cursor: str = "",
              s: auth.Session = need("audit.view")) -> Response:
        if len(user) > queries.MAX_TEXT:
            raise queries.FilterError("user", f"too long (at most {queries.MAX_TEXT} characters)")
        with engine.connect() as conn:
            page = queries.audit_trail(conn, user, cursor or None)
        for r in page.rows:
            r["details"] = json.loads(r["body"]).get("details") or {}
        keep = {"user": user} if user else {}
        next_url = "/audit?" + urlencode({**keep, "cursor": page.next_cursor}) if page.next_cursor else None
        return render(request, "audit.html", page=page, user=user, next_url=next_url)

    # ------------------------------------------------------------ tokens, settings

    def token_rows() -> list[dict[str, Any]]:
        T = db.enroll_tokens
        with engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(
                sa.select(T).order_by(T.c.created_at.desc()).limit(200))]
        for r in rows:
            for k in ("created_at", "expires_at", "used_at"):
                r[k] = queries.utc(r[k])
        return rows

    @app.get("/tokens", include_in_schema=False)
    def tokens(request: Request, s: auth.Session = need("tokens.view")) -> Response:
        return render(request, "tokens.html", tokens=token_rows(), new_token=None, now=auth.now(),
                      can_create=roles.allowed(s.role, "tokens.create"), ttl=cfg.token_ttl_s)

    @app.post("/tokens", include_in_schema=False)
    def tokens_create(request: Request, csrf_token: str = Form(""),
                      s: auth.Session = need("tokens.create")) -> Response:
        csrf_check(request, s, csrf_token)
        token, expires = _create_token(engine, cfg, s.user)
        with engine.begin() as conn:
            insert_collector_event(conn, "console.token_created", user_name=s.user,
                                   details={"token_sha256_prefix": hashlib.sha256(token.encode()).hexdigest()[:12],
                                            "expires_at": expires.isoformat(), "remote": remote(request)})
        return render(request, "tokens.html", 201, tokens=token_rows(), new_token=token, now=auth.now(),
                      can_create=True, ttl=cfg.token_ttl_s)

    @app.get("/settings", include_in_schema=False)
    def settings(request: Request, s: auth.Session = need("settings.view")) -> Response:
        url = sa.engine.make_url(cfg.url)
        rows = [("listen", cfg.listen), ("database", url.render_as_string(hide_password=True)),
                ("state_dir", str(cfg.state_dir)), ("max_batch_bytes", cfg.max_batch_bytes),
                ("max_event_bytes", cfg.max_event_bytes), ("token_ttl_s", cfg.token_ttl_s),
                ("offline_after_s", cfg.offline_after_s), ("tls.cert", cfg.tls.cert or "—"),
                ("syslog.enabled", cfg.syslog.enabled),
                ("syslog.target", f"{cfg.syslog.host}:{cfg.syslog.port}" + (" (TLS)" if cfg.syslog.tls else "")),
                ("console.session_ttl_s", cfg.console.session_ttl_s),
                ("console.max_failed_logins", cfg.console.max_failed_logins),
                ("console.lockout_s", cfg.console.lockout_s)]
        with engine.connect() as conn:
            users = conn.execute(sa.select(db.users.c.name, db.users.c.role, db.users.c.disabled,
                                           db.users.c.locked_until).order_by(db.users.c.name)).all()
        return render(request, "settings.html", rows=rows, source=cfg.source, users=users)

    # ------------------------------------------------------------ media, policy

    @app.get("/media", include_in_schema=False)
    def media(request: Request, s: auth.Session = need("media.view")) -> Response:
        E = db.events
        since = auth.now() - dt.timedelta(days=30)
        seen: dict[tuple, dict[str, Any]] = {}
        with engine.connect() as conn:
            stmt = (sa.select(E.c.time, E.c.kind, E.c.host_name, E.c.action, E.c.body)
                    .where(E.c.time >= since, E.c.kind.like("medium.%")).order_by(E.c.time.desc()).limit(5000))
            for r in conn.execute(stmt):
                m = json.loads(r.body).get("medium") or {}
                key = (m.get("vendor"), m.get("product"), m.get("serial"), m.get("fs_uuid"))
                item = seen.setdefault(key, {"medium": m, "last": queries.utc(r.time), "host": r.host_name,
                                             "action": r.action, "kind": r.kind, "count": 0, "hosts": set()})
                item["count"] += 1
                item["hosts"].add(r.host_name)
        return render(request, "media.html", media=list(seen.values()))

    @app.get("/policy", include_in_schema=False)
    def policy(request: Request, s: auth.Session = need("policy.view")) -> Response:
        device = [(rule, action) for rule, action in agent_policy.DEVICE_DEFAULTS.items() if action]
        files = []
        for host_class in ("classified", "unclassified"):
            for level in Level:
                d = agent_policy.file_action(host_class, "personal", level)
                files.append((host_class, level.id, d.action, d.rule))
        return render(request, "policy.html", device=device, files=files)


EXPORT_COLUMNS = ("time", "kind", "severity", "host_name", "user_name", "level", "action", "file_name",
                  "file_sha256", "status", "event_id", "agent_id", "seq")


def _export_value(row: dict[str, Any], column: str) -> Any:
    value = row[column]
    if column == "time":
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value


def _csv_cell(value: Any) -> Any:
    """Keep spreadsheets from running a cell as a formula (file names are user-controlled)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def _stamp() -> str:
    return auth.now().strftime("%Y%m%dT%H%M%SZ")


def _local_path(target: str) -> str:
    """Only same-site paths as redirect targets (no open redirect)."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target and len(target) < 2000:
        return target
    return ""


def _create_token(engine: sa.Engine, cfg: CollectorConfig, by: str) -> tuple[str, dt.datetime]:
    """A one-time enrollment token; only its sha256 is stored (enroll_tokens, checked by the ingest API)."""
    token = secrets.token_urlsafe(32)
    now = auth.now()
    expires = now + dt.timedelta(seconds=cfg.token_ttl_s)
    with engine.begin() as conn:
        conn.execute(db.enroll_tokens.insert().values(token_hash=hashlib.sha256(token.encode()).hexdigest(),
                                                      created_at=now, expires_at=expires, created_by=by))
    return token, expires
