"""`baomi-collector serve`: the agents' API and the console over HTTPS (plain
HTTP only on loopback), with the offline monitor and syslog forwarding."""
from __future__ import annotations

import argparse
import logging

from .. import db
from .common import add_config_arg, load_config

log = logging.getLogger("baomi.collector")


def add_parser(subs: argparse._SubParsersAction) -> None:
    p = subs.add_parser("serve", help="run the collector (agents' API and review console)")
    add_config_arg(p)
    p.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from ..app import create_app
    cfg = load_config(args)
    db.upgrade(cfg.url)  # a new release brings its migrations along
    app = create_app(cfg, background=True)
    scheme = "https" if cfg.tls.cert else "http"
    log.info("collector listening on %s://%s (database %s)", scheme, cfg.listen,
             cfg.url.split("@")[-1] if "@" in cfg.url else cfg.url)
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level="warning", access_log=False,
                ssl_certfile=str(cfg.tls.cert) if cfg.tls.cert else None,
                ssl_keyfile=str(cfg.tls.key) if cfg.tls.key else None, timeout_graceful_shutdown=10)
    return 0
