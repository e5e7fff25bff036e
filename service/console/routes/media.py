"""Removable media: those seen in the last 30 days, the central registry (集中登记), and one
medium's page with its history. The security administrator registers a medium (from a
row of the list, which fills in its binding, or from typed fields) and revokes a
registration; each change is signed with the passphrase-sealed key as the next version
of the registry document (service/media_registry.py) and recorded for the auditor with
before and after (docs/console.md "Media")."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from baomi.common import media_registry as rules
from baomi.common.levels import Level

from ... import central, db, media_registry
from .. import auth, queries, roles
from ..web import Web, remote

PREFILL = ("vendor_id", "product_id", "serial", "fs_uuid", "fs_label")


def _seen(conn: sa.Connection) -> list[dict[str, Any]]:
    E = db.events
    since = auth.now() - dt.timedelta(days=30)
    seen: dict[tuple, dict[str, Any]] = {}
    stmt = (sa.select(E.c.time, E.c.kind, E.c.host_name, E.c.action, E.c.body)
            .where(E.c.received_at >= since, E.c.kind.like("medium.%"), E.c.agent_id != "collector")
            .order_by(E.c.received_at.desc()).limit(5000))
    for row in conn.execute(stmt):
        m = json.loads(row.body).get("medium") or {}
        key = tuple(str(m.get(k) or "").lower() for k in rules.BINDING_KEYS)
        item = seen.setdefault(key, {"medium": m, "last": queries.utc(row.time), "host": row.host_name,
                                     "action": row.action, "kind": row.kind, "count": 0, "hosts": set()})
        item["count"] += 1
        item["hosts"].add(row.host_name)
    return list(seen.values())


def router(web: Web) -> APIRouter:
    r = APIRouter(include_in_schema=False)
    engine = web.engine

    def listing(request: Request, s: auth.Session, status: int = 200, **extra: Any) -> Response:
        with engine.connect() as conn:
            seen = _seen(conn)
            pub = media_registry.latest(conn)
            key = central.current_key(conn)
        doc = pub.document if pub is not None else rules.empty()
        for item in seen:   # which registration (if any) binds each medium seen
            item["registration"] = next((m for m in doc["media"] if rules.binds(m, item["medium"])), None)
        return web.render(request, "media.html", status, media=seen, registry=doc, published=pub, key=key,
                          published_at=queries.utc(pub.issued_at) if pub is not None else None,
                          can_register=roles.allowed(s.role, "media.register"), **extra)

    def form(request: Request, s: auth.Session, status: int = 200, values: dict[str, Any] | None = None,
             **extra: Any) -> Response:
        with engine.connect() as conn:
            key = central.current_key(conn)
            suggested = rules.next_id(media_registry.all_ids(conn))
        return web.render(request, "medium_register.html", status, values=values or {}, key=key,
                          suggested=suggested, levels=[lv.id for lv in Level], host_classes=rules.HOST_CLASSES,
                          **extra)

    @r.get("/media")
    def media(request: Request, s: auth.Session = web.need("media.view")) -> Response:
        return listing(request, s)

    @r.get("/media/register")
    def register_form(request: Request, s: auth.Session = web.need("media.register")) -> Response:
        """The registration form; a row of /media links here with its binding filled in."""
        values: dict[str, Any] = {k: request.query_params.get(k, "") for k in (*PREFILL, "id", "owner")}
        if request.query_params.get("id"):   # editing a registration: its current fields
            with engine.connect() as conn:
                reg, _ = media_registry.find(media_registry.current(conn), values["id"])
            if reg is not None:
                values = {**reg}
        return form(request, s, values=values)

    @r.post("/media/register")
    async def register(request: Request, s: auth.Session = web.need("media.register")) -> Response:
        f = await request.form()
        web.csrf_check(request, s, str(f.get("csrf_token", "")))
        fields: dict[str, Any] = {k: str(f.get(k, "")) for k in (*PREFILL, "id", "owner", "level", "expires")}
        fields["hosts"] = [str(h) for h in f.getlist("hosts")]
        passphrase = str(f.get("passphrase", ""))

        def do() -> media_registry.Change:
            return media_registry.register(engine, fields, passphrase, s.user)
        try:
            done = await run_in_threadpool(do)
        except central.WrongPassphrase:
            web.audit("console.policy_sign_failed", severity="medium", user_name=s.user, reason="wrong passphrase",
                      document="media_registry", registry_id=fields["id"][:64], remote=remote(request))
            return form(request, s, 403, values=fields, error="policy.error.passphrase_wrong")
        except central.NoSigningKey:
            return form(request, s, 409, values=fields, error="policy.error.no_key")
        except media_registry.LevelLowering as exc:
            web.audit("console.medium_register_refused", severity="medium", user_name=s.user,
                      registry_id=exc.rid, requested=exc.requested.id, held=exc.held.id,
                      held_because=media_registry.because(exc.why), why=exc.why,
                      remote=remote(request))
            return form(request, s, 409, values=fields, error="media.error.level_lowering",
                        error_levels={"requested": exc.requested.id, "held": exc.held.id}, why=exc.why)
        except sa.exc.IntegrityError:
            return form(request, s, 409, values=fields, error="policy.error.concurrent")
        except ValueError as exc:
            return form(request, s, 400, values=fields, error="media.error.bad_field", detail=str(exc)[:300])
        _audit(request, s, "console.medium_registered", done)
        return RedirectResponse(f"/media/{done.rid}?done=registered", status_code=303)

    def _audit(request: Request, s: auth.Session, kind: str, done: media_registry.Change) -> None:
        web.audit(kind, severity="medium", user_name=s.user, registry_id=done.rid, version=done.published.version,
                  before=done.before, after=done.after,
                  signature_sha256_prefix=hashlib.sha256(done.published.signature.encode()).hexdigest()[:16],
                  remote=remote(request))

    @r.get("/media/{rid}")
    def medium(request: Request, rid: str, done: str = "", s: auth.Session = web.need("media.view")) -> Response:
        notices = {"registered": "media.registered", "revoked": "media.revoked_notice"}
        return page(request, s, rid, notice=notices.get(done))

    def page(request: Request, s: auth.Session, rid: str, status: int = 200, **extra: Any) -> Response:
        with engine.connect() as conn:
            reg, rev = media_registry.find(media_registry.current(conn), rid)
            versions = []
            last = None
            for pub in reversed(central.history_of(conn, media_registry.T, 500)):
                entry, gone = media_registry.find(pub.document, rid)
                state = entry or gone
                if state is not None and state != last:
                    versions.append({"version": pub.version, "by": pub.published_by,
                                     "issued_at": queries.utc(pub.issued_at), "entry": entry, "revoked": gone})
                last = state
            if not versions:
                return web.not_found(request)
            binding = reg or next(v["entry"] for v in reversed(versions) if v["entry"])
            hist = media_registry.history(conn, rid, binding)
            held, why = media_registry.highest_level(conn, rid, binding)
            key = central.current_key(conn)
        for e in hist.events:
            e["time"] = queries.utc(e["time"])
        for h in hist.hosts:
            h["first"], h["last"] = queries.utc(h["first"]), queries.utc(h["last"])
        today = dt.datetime.now(dt.timezone.utc).date()
        return web.render(request, "medium.html", status, rid=rid, reg=reg, rev=rev, versions=list(reversed(versions)),
                          binding=binding, hosts=hist.hosts, copies=hist.copies[:500], events=hist.events[:200],
                          held=held.id if held else None, held_because=why, key=key,
                          expired=bool(reg and rules.expired(reg, today)),
                          can_register=roles.allowed(s.role, "media.register"), **extra)

    @r.post("/media/{rid}/revoke")
    async def revoke(request: Request, rid: str, passphrase: str = Form(""), reason: str = Form(""),
                     csrf_token: str = Form(""), s: auth.Session = web.need("media.register")) -> Response:
        web.csrf_check(request, s, csrf_token)

        def do() -> media_registry.Change:
            return media_registry.revoke(engine, rid, passphrase, s.user, reason)
        try:
            done = await run_in_threadpool(do)
        except central.WrongPassphrase:
            web.audit("console.policy_sign_failed", severity="medium", user_name=s.user, reason="wrong passphrase",
                      document="media_registry", registry_id=rid[:64], remote=remote(request))
            return page(request, s, rid, 403, error="policy.error.passphrase_wrong")
        except central.NoSigningKey:
            return page(request, s, rid, 409, error="policy.error.no_key")
        except LookupError:
            return web.not_found(request)
        except sa.exc.IntegrityError:
            return page(request, s, rid, 409, error="policy.error.concurrent")
        _audit(request, s, "console.medium_revoked", done)
        return RedirectResponse(f"/media/{rid}?done=revoked", status_code=303)

    return r
