"""The console's shared plumbing: templates, the session of a request, the
permission dependency `need`, CSRF checks, cookies, error pages and security
headers. The routers in console/routes/ take one `Web` and use only this."""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape

from baomi.common import catalogue
from baomi.common.events import ACTIONS, SEVERITIES
from baomi.common.levels import LEVEL_IDS

from ..config import CollectorConfig
from ..own_events import insert_collector_event
from . import auth, i18n, queries, roles, times

HERE = Path(__file__).parent
SESSION_COOKIE = "baomi_session"
LOGIN_CSRF_COOKIE = "baomi_login_csrf"
STATIC_PREFIX = "/console/static"
CONSOLE_PATHS = ("/login", "/logout", "/lang", "/dashboard", "/events", "/hosts", "/audit", "/tokens",
                 "/settings", "/media", "/policy", STATIC_PREFIX)


class LoginRequired(Exception):
    pass


class Forbidden(Exception):
    def __init__(self, permission: str) -> None:
        self.permission = permission


def local_path(target: str) -> str:
    """Only same-site paths as redirect targets (no open redirect)."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target and len(target) < 2000:
        return target
    return ""


def remote(request: Request) -> str:
    return request.client.host if request.client else ""


class Web:
    """What every console route needs: config, database, templates and the session helpers."""

    def __init__(self, cfg: CollectorConfig, engine: sa.Engine) -> None:
        self.cfg, self.engine = cfg, engine
        self.env = Environment(loader=FileSystemLoader(HERE / "templates"),
                               autoescape=select_autoescape(default=True, default_for_string=True))
        # the office's zone: every time on a page is shown (and every typed time read) in it
        self.tz = times.office_zone(cfg.console.time_zone)
        self.env.globals.update(static=STATIC_PREFIX, roles=roles, LEVEL_IDS=LEVEL_IDS, SEVERITIES=SEVERITIES,
                                ACTIONS=ACTIONS, STATUSES=queries.TRIAGE_STATUSES, tz_name=times.zone_name(self.tz),
                                needs_handling=catalogue.needs_handling, KINDS=catalogue.KINDS)
        # {{ t|ts }} 2026-12-01 22:03:12, {{ t|ts(zone=True) }} 2026-12-01 22:03:12 CST, or a format of its own
        self.env.filters["ts"] = lambda t, fmt=times.SHOWN, zone=False: times.shown(t, self.tz, fmt, zone)
        # {{ e.kind|kind_name }}: the kind's name in the page's language, from the catalogue
        self.env.filters["kind_name"] = pass_context(lambda ctx, kind: catalogue.label(kind, ctx.get("lang", "")))
        self.env.filters["json"] = lambda v: json.dumps(v, ensure_ascii=False, sort_keys=True)
        self.secure_cookies = cfg.tls.cert is not None

    @functools.cached_property
    def secret(self) -> bytes:
        """The server secret the login form's CSRF token is bound to: a key file when one is
        configured, else the one in the database that every collector process shares."""
        if self.cfg.console.secret_key_file:
            return auth.secret_key(self.cfg.console.secret_key_file)
        return auth.shared_secret(self.engine)

    def audit(self, kind: str, *, severity: str = "info", user_name: str | None = None, **details: Any) -> None:
        """One console.* event in its own transaction."""
        with self.engine.begin() as conn:
            insert_collector_event(conn, kind, severity=severity, user_name=user_name, details=details)

    def session_of(self, request: Request) -> auth.Session | None:
        if not hasattr(request.state, "console_session"):
            request.state.console_session = auth.lookup(self.engine, self.cfg.console,
                                                        request.cookies.get(SESSION_COOKIE))
        return request.state.console_session

    def need(self, permission: str):
        def dep(request: Request) -> auth.Session:
            s = self.session_of(request)
            if s is None:
                raise LoginRequired()
            if not roles.allowed(s.role, permission):
                self.audit("console.forbidden", severity="medium", user_name=s.user, role=s.role,
                           permission=permission, method=request.method, path=request.url.path[:200],
                           remote=remote(request))
                raise Forbidden(permission)
            return s
        return Depends(dep)

    @staticmethod
    def locale_of(request: Request) -> str:
        return i18n.choose(request.cookies.get(i18n.COOKIE), request.headers.get("accept-language"))

    def render(self, request: Request, template: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        lang = self.locale_of(request)
        t = i18n.translator(lang)
        s = self.session_of(request)
        nav = [(path, t(label)) for perm, path, label in roles.NAV if s and roles.allowed(s.role, perm)]
        body = self.env.get_template(template).render(
            request=request, t=t, lang=lang, session=s, nav=nav, path=request.url.path,
            here=str(request.url.path) + (("?" + request.url.query) if request.url.query else ""),
            level_name=lambda lv: t(f"level.{lv}") if lv else "", **ctx)
        return HTMLResponse(body, status_code=status)

    def not_found(self, request: Request) -> HTMLResponse:
        return self.render(request, "error.html", 404, message_key="error.not_found")

    def csrf_check(self, request: Request, s: auth.Session, token: str) -> None:
        if not s.csrf_ok(token):
            self.audit("console.csrf_rejected", severity="medium", user_name=s.user,
                       path=request.url.path[:200], remote=remote(request))
            raise Forbidden("csrf")

    def cookie(self, response: Response, name: str, value: str, max_age: int | None = None) -> None:
        response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="strict",
                            secure=self.secure_cookies, path="/")


def install_plumbing(app: FastAPI, web: Web) -> None:
    """Error pages for the console's exceptions, security headers, static files."""

    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, exc: LoginRequired) -> Response:
        if request.method == "GET":
            return RedirectResponse("/login?" + urlencode({"next": local_path(str(request.url.path) + (
                "?" + request.url.query if request.url.query else ""))}), status_code=303)
        return web.render(request, "error.html", 401, message_key="error.login_required")

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        key = "error.csrf" if exc.permission == "csrf" else "error.forbidden"
        return web.render(request, "error.html", 403, message_key=key)

    @app.exception_handler(queries.FilterError)
    async def _bad_filter(request: Request, exc: queries.FilterError) -> Response:
        return web.render(request, "error.html", 400, message_key="error.bad_filter",
                          detail=f"{exc.field}: {exc.message}")

    @app.middleware("http")
    async def _security_headers(request: Request, call_next):
        response = await call_next(request)
        if web.secure_cookies:  # served over TLS: browsers must not fall back to plain HTTP
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
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
