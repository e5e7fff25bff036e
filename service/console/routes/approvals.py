"""Copy approvals (审批): requests from users whose copy was blocked, and (security
administrator only) granting or refusing each, signed with the passphrase-sealed key
(docs/media.md "审批"). The auditor sees the list and, in the audit trail, every decision."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from baomi.common import approvals as rules

from ... import approvals, central
from ...own_events import insert_collector_event
from .. import auth, roles
from ..web import Web, remote

STATUSES = ("pending", "granted", "refused")


def router(web: Web) -> APIRouter:
    r = APIRouter(include_in_schema=False)
    engine = web.engine

    def page(request: Request, s: auth.Session, status: int = 200, show: str = "", **extra: Any) -> Response:
        with engine.connect() as conn:
            rows = approvals.listing(conn, show or None)
            for row in rows:
                if row["status"] == "pending":
                    row["evidence"] = approvals.evidence_of(conn, row["event_id"])
            key = central.current_key(conn)
        return web.render(request, "approvals.html", status, rows=rows, show=show, statuses=STATUSES, key=key,
                          default_hours=rules.DEFAULT_HOURS, max_hours=rules.MAX_HOURS,
                          can_decide=roles.allowed(s.role, "approvals.decide"), **extra)

    @r.get("/approvals")
    def listing(request: Request, status: str = "", s: auth.Session = web.need("approvals.view")) -> Response:
        return page(request, s, show=status if status in STATUSES else "")

    @r.post("/approvals/{request_id}")
    async def decide(request: Request, request_id: str, decision: str = Form(""), hours: str = Form(""),
                     copies: str = Form(""), comment: str = Form(""), passphrase: str = Form(""),
                     csrf_token: str = Form(""), s: auth.Session = web.need("approvals.decide")) -> Response:
        web.csrf_check(request, s, csrf_token)
        try:
            h = float(hours) if hours.strip() else float(rules.DEFAULT_HOURS)
            n = int(copies) if copies.strip() else None
        except ValueError:
            return page(request, s, 400, error="approvals.error.bad_field", detail=f"{hours!r} / {copies!r}")

        def do() -> approvals.Decided:
            return approvals.decide(engine, request_id, decision, passphrase, s.user, h, n, comment.strip())
        try:
            done = await run_in_threadpool(do)
        except central.WrongPassphrase:
            web.audit("console.policy_sign_failed", severity="medium", user_name=s.user,
                      reason="wrong passphrase", approval_id=request_id[:64], remote=remote(request))
            return page(request, s, 403, error="policy.error.passphrase_wrong")
        except central.NoSigningKey:
            return page(request, s, 409, error="policy.error.no_key")
        except approvals.NotPending as exc:
            return page(request, s, 409, error="approvals.error.not_pending", detail=str(exc))
        except LookupError:
            return web.not_found(request)
        except ValueError as exc:
            return page(request, s, 400, error="approvals.error.bad_field", detail=str(exc)[:300])
        row = done.row
        with engine.begin() as conn:   # the auditor's record: who decided what, before and after
            insert_collector_event(conn, f"approval.{decision}", severity="medium" if decision == "granted" else "low",
                                   user_name=s.user, host_name=row["host_name"], action=decision, details={
                                       "approval_id": request_id, "agent_id": row["agent_id"],
                                       "requester": row["user_name"], "sha256": row["sha256"],
                                       "file_name": row["file_name"], "level": row["level"],
                                       "before": done.before, "after": done.after, "remote": remote(request)})
        return page(request, s, 201, notice=f"approvals.{decision}", decided=request_id)

    return r
