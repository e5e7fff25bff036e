"""The sysadmin's read-only view of the configuration and the accounts."""
from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import Response

from ... import db
from .. import auth, times
from ..web import Web


def router(web: Web) -> APIRouter:
    r = APIRouter(include_in_schema=False)
    cfg = web.cfg

    @r.get("/settings")
    def settings(request: Request, s: auth.Session = web.need("settings.view")) -> Response:
        url = sa.engine.make_url(cfg.url)
        rows = [("listen", cfg.listen), ("database", url.render_as_string(hide_password=True)),
                ("state_dir", str(cfg.state_dir)), ("max_batch_bytes", cfg.max_batch_bytes),
                ("max_event_bytes", cfg.max_event_bytes), ("token_ttl_s", cfg.token_ttl_s),
                ("offline_after_s", cfg.offline_after_s), ("tls.cert", cfg.tls.cert or "—"),
                ("syslog.enabled", cfg.syslog.enabled),
                ("syslog.target", f"{cfg.syslog.host}:{cfg.syslog.port}" + (" (TLS)" if cfg.syslog.tls else "")),
                ("console.session_ttl_s", cfg.console.session_ttl_s),
                ("console.max_failed_logins", cfg.console.max_failed_logins),
                ("console.lockout_s", cfg.console.lockout_s),
                ("console.time_zone", times.zone_name(web.tz) + ("" if cfg.console.time_zone else " (server)"))]
        with web.engine.connect() as conn:
            users = conn.execute(sa.select(db.users.c.name, db.users.c.role, db.users.c.disabled,
                                           db.users.c.locked_until).order_by(db.users.c.name)).all()
        return web.render(request, "settings.html", rows=rows, source=cfg.source, users=users)

    return r
