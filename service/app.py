"""The collector's web application: the agents' API under /api/v1 and the
review console (service/console) on the same server."""
from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
from typing import Any, AsyncIterator

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from baomi.common import schema

from . import approvals, central, db
from . import rules as site_rules
from .config import CollectorConfig
from .enroll import EnrollError, EnrollRefused, enroll, record_refusal
from .ingest import Ingest, Rejected
from .limits import BodyLimit

log = logging.getLogger("baomi.collector")


def create_app(cfg: CollectorConfig, engine: sa.Engine | None = None, *, background: bool = False) -> FastAPI:
    """The app; background=True also runs the offline monitor and the syslog
    forwarder for the app's lifetime (what `baomi-collector serve` does)."""
    engine = engine or db.make_engine(cfg.url)
    ingest = Ingest(engine, cfg.max_batch_bytes, cfg.max_event_bytes)
    forwarder = None
    if cfg.syslog.enabled:
        from .syslog import Forwarder
        forwarder = Forwarder(cfg.syslog.host, cfg.syslog.port, use_tls=cfg.syslog.tls,
                              ca=str(cfg.syslog.ca) if cfg.syslog.ca else None, app_name=cfg.syslog.app_name)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        monitor = None
        if background:
            from .monitor import Monitor
            monitor = Monitor(engine, cfg.offline_after_s)
            monitor.start()
        if forwarder is not None:
            forwarder.start()
        try:
            yield
        finally:
            if monitor is not None:
                monitor.stop()
            if forwarder is not None:
                forwarder.stop()

    app = FastAPI(title="baomi collector", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.engine, app.state.ingest, app.state.forwarder = engine, ingest, forwarder

    def body_limit(path: str) -> int:
        if path == "/api/v1/events":
            return cfg.max_batch_bytes
        if path == "/api/v1/enroll":
            return cfg.max_enroll_bytes
        if path == "/rules/fingerprints":   # a document to fingerprint: its own cap, told on the page
            return site_rules.MAX_UPLOAD_BYTES + 64 * 1024
        return cfg.max_form_bytes
    app.add_middleware(BodyLimit, limit_for=body_limit)

    def error(status: int, message: str, **extra: Any) -> JSONResponse:
        headers = {"Retry-After": "5"} if status == 503 else None
        return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)

    @app.get("/api/v1/health")
    def health() -> JSONResponse:
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError as exc:
            return error(503, f"database unavailable: {type(exc).__name__}", status="degraded", database="down")
        return JSONResponse({"status": "ok", "database": "ok"})

    @app.post("/api/v1/enroll")
    async def enroll_agent(request: Request) -> JSONResponse:
        raw = await request.body()
        try:
            body = schema.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return error(400, "body is not JSON")
        except ValueError as exc:
            return error(422, str(exc))
        problem = schema.check_model(schema.Enrollment, body) if isinstance(body, dict) else None
        if problem:
            return error(422, problem)
        try:
            result = await run_in_threadpool(enroll, engine, body)
        except EnrollRefused as exc:
            log.warning("enrollment refused (%s): %s", request.client.host if request.client else "?", exc)
            await run_in_threadpool(record_refusal, engine, exc, request.client.host if request.client else "")
            return error(exc.status, str(exc))
        except EnrollError as exc:
            log.warning("enrollment refused (%s): %s", request.client.host if request.client else "?", exc)
            return error(exc.status, str(exc))
        except sa.exc.OperationalError as exc:
            return error(503, f"database unavailable: {type(exc).__name__}")
        return JSONResponse(result)

    def take(raw: bytes, agent: str | None, signature: str | None) -> tuple[Any, dict[str, Any]]:
        """Verify and store a batch, then read the documents its answer names: one trip to a
        worker thread for all of it (each trip costs the event loop more than the query)."""
        result = ingest.store(ingest.verify(raw, agent, signature))
        # a self-inspection report the console asked for (立即自查): read from the agent's row that
        # storing the batch loaded anyway, so it costs no query
        asked = {"check_requested": result.check_requested} if result.check_requested else {}
        try:  # the latest signed policy (the agent fetches it when it differs), and the signed
            # approval decisions this agent does not hold yet
            return result, {**documents_for(agent or ""), **asked}
        except sa.exc.SQLAlchemyError:
            return result, asked

    @app.post("/api/v1/events")
    async def events(request: Request) -> JSONResponse:
        raw = await request.body()
        agent = request.headers.get("x-baomi-agent")
        try:
            result, documents = await run_in_threadpool(take, raw, agent, request.headers.get("x-baomi-signature"))
        except Rejected as exc:
            log.warning("batch from %s rejected (%d): %s", agent, exc.status, exc)
            return error(exc.status, str(exc), **exc.extra)
        except sa.exc.OperationalError as exc:
            log.warning("batch from %s not stored, database unavailable: %s", agent, exc)
            return error(503, "database unavailable; retry later")
        if forwarder is not None and result.events:
            forwarder.submit(result.events)
        answer = {"acked": result.acked, "stored": result.stored, "duplicates": result.duplicates}
        answer.update(documents)
        if result.conflicts:
            answer["conflicts"] = result.conflicts
        return JSONResponse(answer)

    def documents_for(agent_id: str) -> dict[str, Any]:
        with engine.connect() as conn:
            # one round trip for the three latest versions: this runs for every heartbeat
            top = [sa.select(sa.func.coalesce(sa.func.max(t.c.version), 0)).scalar_subquery()
                   for t in (db.policy_documents, db.media_registry_documents, db.rules_documents)]
            versions = conn.execute(sa.select(*top)).one()
            out: dict[str, Any] = dict(zip(("policy_version", "media_registry_version", "rules_version"),
                                           (int(v) for v in versions)))
            decisions = approvals.for_agent(conn, agent_id)
            if decisions:
                out["approvals"] = decisions
            return out

    def enrolled(agent_id: str | None) -> bool:
        if not agent_id or len(agent_id) > 64:
            return False
        with engine.connect() as conn:
            return conn.execute(sa.select(db.agents.c.agent_id).where(db.agents.c.agent_id == agent_id)).first() \
                is not None

    async def signed_document(request: Request, table: sa.Table, what: str) -> Response:
        """The latest signed document of `table`, as stored (agents verify it themselves; the
        collector never sends an unsigned one). ETag / If-None-Match: 304 when unchanged."""
        def load() -> tuple[bool, Any]:
            if not enrolled(request.headers.get("x-baomi-agent")):
                return False, None
            with engine.connect() as conn:
                return True, central.latest_of(conn, table)
        try:
            known, pub = await run_in_threadpool(load)   # one trip to a worker thread for both reads
        except sa.exc.OperationalError:
            return error(503, "database unavailable; retry later")
        if not known:
            return error(401, "unknown agent")
        if pub is None:
            return error(404, f"no {what} published")
        body, etag = central.served(pub)
        if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
            return Response(status_code=304, headers={"ETag": etag})
        return Response(body, media_type="application/json", headers={"ETag": etag, "Cache-Control": "no-cache"})

    @app.get("/api/v1/policy")
    async def policy_document(request: Request) -> Response:
        return await signed_document(request, db.policy_documents, "policy document")

    @app.get("/api/v1/media-registry")
    async def media_registry_document(request: Request) -> Response:
        """The whole signed media registry (docs/media.md "集中登记")."""
        return await signed_document(request, db.media_registry_documents, "media registry document")

    @app.get("/api/v1/rules")
    async def rules_document(request: Request) -> Response:
        """The latest signed rules document (docs/rules.md "Central rules")."""
        return await signed_document(request, db.rules_documents, "rules document")

    if importlib.util.find_spec("baomi.service.console") is not None:
        from .console import install as install_console
        install_console(app, cfg, engine)
    return app
