"""The review console: server-rendered pages for the three roles (docs/console.md).

install() adds the console's routes, security headers and static files to the
collector's FastAPI application.
"""
from __future__ import annotations

import sqlalchemy as sa
from fastapi import FastAPI

from ..config import CollectorConfig


def install(app: FastAPI, cfg: CollectorConfig, engine: sa.Engine) -> None:
    from . import views
    views.install(app, cfg, engine)
