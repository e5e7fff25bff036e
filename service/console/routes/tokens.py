"""Enrollment tokens: the list and creating one (only its sha256 is stored)."""
from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from ... import db, enroll
from ...config import CollectorConfig
from .. import auth, queries, roles
from ..web import Web, remote


def create_token(engine: sa.Engine, cfg: CollectorConfig, by: str) -> tuple[str, dt.datetime]:
    """A one-time enrollment token; only its sha256 is stored (enroll_tokens, checked by the ingest API)."""
    token = enroll.new_token()
    now = auth.now()
    expires = now + dt.timedelta(seconds=cfg.token_ttl_s)
    with engine.begin() as conn:
        conn.execute(db.enroll_tokens.insert().values(token_hash=hashlib.sha256(token.encode()).hexdigest(),
                                                      created_at=now, expires_at=expires, created_by=by))
    return token, expires


def router(web: Web) -> APIRouter:
    r = APIRouter(include_in_schema=False)
    engine, cfg = web.engine, web.cfg

    def token_rows() -> list[dict[str, Any]]:
        T = db.enroll_tokens
        with engine.connect() as conn:
            rows = [dict(row._mapping) for row in conn.execute(
                sa.select(T).order_by(T.c.created_at.desc()).limit(200))]
        for row in rows:
            for k in ("created_at", "expires_at", "used_at"):
                row[k] = queries.utc(row[k])
        return rows

    def page(request: Request, status: int, new_token: str | None, can_create: bool) -> Response:
        return web.render(request, "tokens.html", status, tokens=token_rows(), new_token=new_token, now=auth.now(),
                          can_create=can_create, ttl=cfg.token_ttl_s)

    @r.get("/tokens")
    def tokens(request: Request, s: auth.Session = web.need("tokens.view")) -> Response:
        return page(request, 200, None, roles.allowed(s.role, "tokens.create"))

    @r.post("/tokens")
    def tokens_create(request: Request, csrf_token: str = Form(""),
                      s: auth.Session = web.need("tokens.create")) -> Response:
        web.csrf_check(request, s, csrf_token)
        token, expires = create_token(engine, cfg, s.user)
        web.audit("console.token_created", user_name=s.user,
                  token_sha256_prefix=hashlib.sha256(token.encode()).hexdigest()[:12],
                  expires_at=expires.isoformat(), remote=remote(request))
        return page(request, 201, token, True)

    return r
