"""Login, logout, language choice and the root redirect."""
from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from .. import auth, i18n, roles
from ..web import LOGIN_CSRF_COOKIE, SESSION_COOKIE, LoginRequired, Web, local_path, remote


def router(web: Web) -> APIRouter:
    r = APIRouter(include_in_schema=False)
    engine, cfg = web.engine, web.cfg

    def login_form(request: Request, status: int, next: str, error: str | None) -> Response:
        token = auth.login_csrf(web.secret)
        response = web.render(request, "login.html", status, csrf=token, next=local_path(next), error=error)
        web.cookie(response, LOGIN_CSRF_COOKIE, token, max_age=3600)
        return response

    @r.get("/")
    def root(request: Request) -> Response:
        s = web.session_of(request)
        return RedirectResponse(roles.home(s.role) if s else "/login", status_code=303)

    @r.get("/login")
    def login_page(request: Request, next: str = "") -> Response:
        return login_form(request, 200, next, None)

    @r.post("/login")
    def login_post(request: Request, username: str = Form(""), password: str = Form(""),
                   csrf_token: str = Form(""), next: str = Form("")) -> Response:
        if not auth.login_csrf_ok(web.secret, request.cookies.get(LOGIN_CSRF_COOKIE, ""), csrf_token):
            web.audit("console.csrf_rejected", severity="medium", user_name=username[:128] or None,
                      path="/login", remote=remote(request))
            return web.render(request, "error.html", 403, message_key="error.csrf")
        result = auth.login(engine, cfg.console, username, password, remote(request))
        if result.token is None:
            return login_form(request, 401, next, "login.locked" if result.reason == "locked" else "login.failed")
        s = auth.lookup(engine, cfg.console, result.token)
        target = local_path(next) or roles.home(s.role if s else "")
        response = RedirectResponse(target, status_code=303)
        web.cookie(response, SESSION_COOKIE, result.token)
        response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
        return response

    @r.post("/logout")
    def logout(request: Request, csrf_token: str = Form("")) -> Response:
        s = web.session_of(request)
        if s is None:
            raise LoginRequired()
        web.csrf_check(request, s, csrf_token)
        auth.logout(engine, s, remote(request))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @r.get("/lang/{code}")
    def set_lang(code: str, next: str = "/") -> Response:
        response = RedirectResponse(local_path(next) or "/", status_code=303)
        if code in i18n.LOCALES:
            response.set_cookie(i18n.COOKIE, code, max_age=365 * 86400, samesite="lax", path="/")
        return response

    return r
