"""The policy matrix: every cell the agents apply, and (security administrator only)
editing it, signing it with the passphrase-sealed key and publishing it as the next
central policy document (docs/console.md "Publishing the policy")."""
from __future__ import annotations

import hashlib
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from baomi.common import policy as agent_policy

from ... import central
from .. import auth, queries, roles
from ..web import Web, remote


def _kind(rule: str) -> str:
    if rule in agent_policy.device_cells():
        return "device"
    return "print" if ".printer." in rule else "file"


def router(web: Web) -> APIRouter:
    r = APIRouter(include_in_schema=False)
    engine = web.engine

    def page(request: Request, s: auth.Session, status: int = 200, **extra: Any) -> Response:
        defaults = central.default_cells()
        with engine.connect() as conn:
            cells = central.current_cells(conn)
            key = central.current_key(conn)
            docs = central.history(conn, 20)
        rows = [{"rule": rule, "kind": _kind(rule), "default": default, "current": cells.get(rule, default),
                 "choices": agent_policy.DEVICE_ACTIONS if _kind(rule) == "device" else agent_policy.FILE_ACTIONS}
                for rule, default in defaults.items()]
        history = [{"version": d.version, "issued_at": queries.utc(d.issued_at), "by": d.published_by,
                    "differs": sum(1 for c, a in (d.document.get("cells") or {}).items() if defaults.get(c) != a)}
                   for d in docs]
        return web.render(request, "policy.html", status, rows=rows, key=key, history=history,
                          latest=history[0] if history else None,
                          can_publish=roles.allowed(s.role, "policy.publish"), **extra)

    @r.get("/policy")
    def policy(request: Request, s: auth.Session = web.need("policy.view")) -> Response:
        return page(request, s)

    @r.get("/policy/secadmin-policy.pub.pem")
    def public_key(request: Request, s: auth.Session = web.need("policy.view")) -> Response:
        with engine.connect() as conn:
            key = central.current_key(conn)
        if key is None:
            return web.not_found(request)
        return Response(central.public_pem(key.public_key), media_type="application/x-pem-file",
                        headers={"Content-Disposition": 'attachment; filename="secadmin-policy.pub.pem"'})

    @r.post("/policy/key")
    def create_key(request: Request, passphrase: str = Form(""), passphrase2: str = Form(""),
                   csrf_token: str = Form(""), s: auth.Session = web.need("policy.publish")) -> Response:
        web.csrf_check(request, s, csrf_token)
        problem = None
        if passphrase != passphrase2:
            problem = "policy.error.passphrase_mismatch"
        elif auth.password_problem(s.user, passphrase) is not None or len(passphrase) < central.MIN_PASSPHRASE:
            problem = "policy.error.passphrase_weak"
        if problem:
            return page(request, s, 400, error=problem)
        try:
            info = central.create_key(engine, passphrase, s.user)
        except ValueError:
            return page(request, s, 409, error="policy.error.key_exists")
        web.audit("console.signing_key_created", severity="medium", user_name=s.user,
                  fingerprint=info.fingerprint, public_key=info.public_key, remote=remote(request))
        return page(request, s, 201, notice="policy.key_created")

    @r.post("/policy")
    async def publish(request: Request, s: auth.Session = web.need("policy.publish")) -> Response:
        form = await request.form()
        web.csrf_check(request, s, str(form.get("csrf_token", "")))
        passphrase = str(form.get("passphrase", ""))
        cells = {k[5:]: str(v) for k, v in form.items() if k.startswith("cell.")}

        def do() -> Any:
            return central.publish(engine, cells, passphrase, s.user)
        try:
            pub, changed = await run_in_threadpool(do)
        except central.WrongPassphrase:
            web.audit("console.policy_sign_failed", severity="medium", user_name=s.user,
                      reason="wrong passphrase", remote=remote(request))
            return page(request, s, 403, error="policy.error.passphrase_wrong")
        except sa.exc.IntegrityError:   # another publication took this version a moment ago
            return page(request, s, 409, error="policy.error.concurrent")
        except central.NoSigningKey:
            return page(request, s, 409, error="policy.error.no_key")
        except ValueError as exc:
            web.audit("console.policy_sign_failed", severity="medium", user_name=s.user,
                      reason=str(exc)[:300], remote=remote(request))
            return page(request, s, 400, error="policy.error.bad_cell", detail=str(exc)[:300])
        web.audit("console.policy_published", severity="medium", user_name=s.user, version=pub.version,
                  scope=pub.document["scope"], issued_at=pub.document["issued_at"], changes=changed,
                  signature_sha256_prefix=hashlib.sha256(pub.signature.encode()).hexdigest()[:16],
                  remote=remote(request))
        return page(request, s, 201, notice="policy.published", published=pub.version, changed=changed)

    return r
