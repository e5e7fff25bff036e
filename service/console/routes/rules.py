"""Site rules: the central rule file (TOML in the format of the agents' rule files) and
the registered documents' fingerprints; the security administrator edits, signs and
publishes them as the next central rules document, the auditor views them
(docs/console.md "Site rules"). Every publication is a console.rules_published event
with the changes before and after; a refused rule file a console.rules_refused one."""
from __future__ import annotations

import hashlib
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from baomi.common import rulesdoc
from baomi.common.levels import LEVEL_IDS
from baomi.common.rulefile import RuleError, validate

from ... import central
from ... import rules as site_rules
from .. import auth, queries, roles
from ..web import Web, remote

FP_LEVELS = tuple(lvl for lvl in LEVEL_IDS if lvl != "public")


def router(web: Web) -> APIRouter:
    r = APIRouter(include_in_schema=False)
    engine = web.engine

    def page(request: Request, s: auth.Session, status: int = 200, text: str | None = None,
             **extra: Any) -> Response:
        with engine.connect() as conn:
            state = site_rules.current(conn)
            key = central.current_key(conn)
            docs = site_rules.history(conn, 20)
        try:
            counts = validate(state.get("rules", ""), rulesdoc.SOURCE)
        except RuleError:
            counts = None
        history = [{"version": d.version, "issued_at": queries.utc(d.issued_at), "by": d.published_by,
                    "fingerprints": len(d.document.get("fingerprints", []))} for d in docs]
        return web.render(request, "rules.html", status, text=state.get("rules", "") if text is None else text,
                          fingerprints=state.get("fingerprints", []), counts=counts, key=key, history=history,
                          latest=history[0] if history else None, levels=FP_LEVELS,
                          max_mb=site_rules.MAX_UPLOAD_BYTES // (1024 * 1024),
                          can_publish=roles.allowed(s.role, "rules.publish"), **extra)

    async def publish(request: Request, s: auth.Session, change: Any, notice: str, text: str | None = None,
                      **audit: Any) -> Response:
        passphrase = audit.pop("passphrase")

        def do() -> Any:
            return site_rules.publish(engine, change, passphrase, s.user)
        try:
            pub, changed = await run_in_threadpool(do)
        except central.WrongPassphrase:
            web.audit("console.policy_sign_failed", severity="medium", user_name=s.user, document="rules",
                      reason="wrong passphrase", remote=remote(request))
            return page(request, s, 403, text=text, error="policy.error.passphrase_wrong")
        except central.NoSigningKey:
            return page(request, s, 409, text=text, error="policy.error.no_key")
        except sa.exc.IntegrityError:
            return page(request, s, 409, text=text, error="policy.error.concurrent")
        except RuleError as exc:
            web.audit("console.rules_refused", severity="low", user_name=s.user, reason=str(exc)[:500],
                      line=exc.line, remote=remote(request))
            return page(request, s, 400, text=text, error="rules.error.bad_rule", detail=str(exc)[:500])
        except LookupError:
            return page(request, s, 404, text=text, error="rules.error.not_found")
        except ValueError as exc:
            return page(request, s, 400, text=text, error="rules.error.bad_field", detail=str(exc)[:300])
        web.audit("console.rules_published", severity="medium", user_name=s.user, version=pub.version,
                  issued_at=pub.document["issued_at"], changes=changed,
                  signature_sha256_prefix=hashlib.sha256(pub.signature.encode()).hexdigest()[:16],
                  remote=remote(request), **audit)
        return page(request, s, 201, notice=notice, published=pub.version)

    @r.get("/rules")
    def rules_page(request: Request, s: auth.Session = web.need("rules.view")) -> Response:
        return page(request, s)

    @r.post("/rules")
    async def publish_rules(request: Request, s: auth.Session = web.need("rules.publish")) -> Response:
        form = await request.form()
        web.csrf_check(request, s, str(form.get("csrf_token", "")))
        text = str(form.get("rules", ""))
        return await publish(request, s, site_rules.with_rules(text), "rules.published", text=text,
                             passphrase=str(form.get("passphrase", "")))

    @r.post("/rules/fingerprints")
    async def add_fingerprint(request: Request, s: auth.Session = web.need("rules.publish")) -> Response:
        form = await request.form()
        web.csrf_check(request, s, str(form.get("csrf_token", "")))
        upload = form.get("document")
        if upload is None or isinstance(upload, str) or not getattr(upload, "filename", ""):
            return page(request, s, 400, error="rules.error.bad_field", detail="no document chosen")
        try:   # hashed in pieces as it is read; the bytes are dropped here
            sha, size, exported = await site_rules.read_upload(upload)
        except site_rules.TooLarge as exc:
            return page(request, s, 413, error="rules.error.too_large", detail=str(exc))
        except ValueError as exc:   # a damaged export file
            return page(request, s, 400, error="rules.error.bad_field", detail=str(exc)[:300])
        if exported is not None:   # text fingerprints made on a PC: its name and level unless the form names one
            entry = dict(exported)
            entry["name"] = str(form.get("name", "")).strip() or entry["name"]
        else:
            level = str(form.get("level", ""))
            if level not in FP_LEVELS:
                return page(request, s, 400, error="rules.error.bad_field", detail=f"level {level!r}")
            entry = {"name": str(form.get("name", "")).strip() or str(upload.filename), "level": level, "sha256": sha}
        return await publish(request, s, site_rules.with_fingerprint(entry), "rules.fp_added",
                             passphrase=str(form.get("passphrase", "")), fingerprint={
                                 "name": entry["name"], "level": entry["level"], "sha256": entry["sha256"],
                                 "upload_size": size, "text_fingerprints": len(entry.get("hashes", []))})

    @r.post("/rules/fingerprints/remove")
    async def remove_fingerprint(request: Request, s: auth.Session = web.need("rules.publish")) -> Response:
        form = await request.form()
        web.csrf_check(request, s, str(form.get("csrf_token", "")))
        name = str(form.get("name", ""))
        return await publish(request, s, site_rules.without_fingerprint(name), "rules.fp_removed",
                             passphrase=str(form.get("passphrase", "")))

    return r
