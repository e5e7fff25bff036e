"""The review console: server-rendered pages for the three roles (docs/console.md).

install() adds the console's routes (one router per area in console/routes/),
security headers and static files to the collector's FastAPI application.
"""
from __future__ import annotations

import sqlalchemy as sa
from fastapi import FastAPI

from ..config import CollectorConfig


def install(app: FastAPI, cfg: CollectorConfig, engine: sa.Engine) -> None:
    from .routes import include_all
    from .web import Web, install_plumbing
    web = Web(cfg, engine)
    install_plumbing(app, web)
    include_all(app, web)
