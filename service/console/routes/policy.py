"""The policy matrix: every cell the agents apply, in each scope (all hosts, per host class,
per host group), and (security administrator only) editing a scope, signing every scope
with the passphrase-sealed key and publishing it as the next central policy document;
which hosts run which version (docs/console.md "Publishing the policy")."""
from __future__ import annotations

import hashlib
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from baomi.common import central as doc_rules
from baomi.common import policy as agent_policy

from ... import central, db
from .. import auth, queries, roles
from ..web import Web, remote


def _kind(rule: str) -> str:
    if rule in agent_policy.device_cells():
        return "device"
    return "print" if ".printer." in rule else "file"


def router(web: Web) -> APIRouter:
    r = APIRouter(include_in_schema=False)
    engine = web.engine

    def page(request: Request, s: auth.Session, status: int = 200, scope: str = doc_rules.SCOPE_ALL,
             **extra: Any) -> Response:
        defaults = central.default_cells()
        with engine.connect() as conn:
            cells = central.current_cells(conn)
            scopes = central.current_scopes(conn)
            key = central.current_key(conn)
            docs = central.history(conn, 20)
            members = central.groups(conn)
            signed = central.signed_groups(conn)
            running = central.versions_running(conn)
            names = dict(conn.execute(sa.select(db.agents.c.agent_id, db.agents.c.host_name)).all())
        choices = scope_list_of(members)
        if scope not in choices:
            scope = doc_rules.SCOPE_ALL
        here = scopes.get(scope, {})
        rows = []
        for rule, default in defaults.items():
            if not doc_rules.cell_applies(rule, scope):
                continue
            row = {"rule": rule, "kind": _kind(rule), "default": default,
                   "choices": agent_policy.DEVICE_ACTIONS if _kind(rule) == "device" else agent_policy.FILE_ACTIONS}
            if scope == doc_rules.SCOPE_ALL:
                row.update(current=cells.get(rule, default), set_here=True, inherited=[])
            else:
                row.update(current=here.get(rule, central.INHERIT), set_here=rule in here,
                           inherited=[{"host_class": hc, "action": a or default, "from": src}
                                      for hc, a, src in doc_rules.inherited(cells, scopes, scope, rule)])
            rows.append(row)
        history = [{"version": d.version, "issued_at": queries.utc(d.issued_at), "by": d.published_by,
                    "differs": sum(1 for c, a in (d.document.get("cells") or {}).items() if defaults.get(c) != a),
                    "scoped": sum(len(v) for v in (d.document.get("scopes") or {}).values())}
                   for d in docs]
        pending = [{"agent_id": a, "host_name": names.get(a, a), **c}
                   for a, c in central.membership_changes(signed, members).items()]
        group_rows = [{"name": g, "hosts": [{"agent_id": a, "host_name": names.get(a, a)} for a in m],
                       "cells": len(scopes.get(doc_rules.group_scope(g), {}))} for g, m in members.items()]
        counts = {k: len(v) for k, v in scopes.items()}
        return web.render(request, "policy.html", status, rows=rows, key=key, history=history,
                          latest=history[0] if history else None, scope=scope, scopes=choices,
                          scope_counts=counts, pending=pending, groups=group_rows,
                          running=[{**r, "first": queries.utc(r["first"]), "last": queries.utc(r["last"])}
                                   for r in running],
                          can_publish=roles.allowed(s.role, "policy.publish"), **extra)

    def scope_list_of(members: dict[str, list[str]]) -> list[str]:
        return ([doc_rules.SCOPE_ALL] + [doc_rules.class_scope(c) for c in doc_rules.HOST_CLASSES]
                + [doc_rules.group_scope(g) for g in members])

    @r.get("/policy")
    def policy(request: Request, scope: str = doc_rules.SCOPE_ALL,
               s: auth.Session = web.need("policy.view")) -> Response:
        return page(request, s, scope=scope)

    @r.get("/policy/hosts")
    def hosts_running(request: Request, version: str = "", s: auth.Session = web.need("policy.view")) -> Response:
        """The hosts behind one row of the rollout table (policy_version as they report it)."""
        A = db.agents
        with engine.connect() as conn:
            cond = A.c.policy_version.is_(None) if version == "" else A.c.policy_version == version
            rows = [dict(r._mapping) for r in conn.execute(
                sa.select(A.c.agent_id, A.c.host_name, A.c.host_class, A.c.policy_version, A.c.policy_applied_at,
                          A.c.last_seen).where(cond).order_by(A.c.host_name, A.c.agent_id))]
            members = central.groups(conn)
        group = {a: g for g, m in members.items() for a in m}
        for row in rows:
            row["group"] = group.get(row["agent_id"])
            row["policy_applied_at"] = queries.utc(row["policy_applied_at"])
            row["last_seen"] = queries.utc(row["last_seen"])
        return web.render(request, "policy_hosts.html", version=version, hosts=rows)

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
        scope = str(form.get("scope", "") or doc_rules.SCOPE_ALL)
        cells = {k[5:]: str(v) for k, v in form.items() if k.startswith("cell.")}

        def do() -> Any:
            return central.publish(engine, cells, passphrase, s.user, scope)
        try:
            pub, changed, more = await run_in_threadpool(do)
        except central.WrongPassphrase:
            web.audit("console.policy_sign_failed", severity="medium", user_name=s.user,
                      reason="wrong passphrase", remote=remote(request))
            return page(request, s, 403, scope=scope, error="policy.error.passphrase_wrong")
        except sa.exc.IntegrityError:   # another publication took this version a moment ago
            return page(request, s, 409, error="policy.error.concurrent")
        except central.NoSigningKey:
            return page(request, s, 409, error="policy.error.no_key")
        except ValueError as exc:
            web.audit("console.policy_sign_failed", severity="medium", user_name=s.user,
                      reason=str(exc)[:300], remote=remote(request))
            return page(request, s, 400, scope=scope, error="policy.error.bad_cell", detail=str(exc)[:300])
        web.audit("console.policy_published", severity="medium", user_name=s.user, version=pub.version,
                  scope=more.scope, issued_at=pub.document["issued_at"], changes=changed,
                  scopes=sorted(pub.document.get("scopes", {})), membership=more.membership,
                  groups_added=more.groups_added, groups_removed=more.groups_removed,
                  scopes_dropped=more.scopes_dropped,
                  signature_sha256_prefix=hashlib.sha256(pub.signature.encode()).hexdigest()[:16],
                  remote=remote(request))
        return page(request, s, 201, scope=scope, notice="policy.published", published=pub.version,
                    changed=changed, membership=more.membership)

    return r
