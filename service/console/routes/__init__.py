"""One APIRouter per console area; each module's router(web) builds it."""
from __future__ import annotations

from fastapi import FastAPI

from ..web import Web

AREAS = ("login", "dashboard", "events", "hosts", "audit", "tokens", "settings", "media", "policy", "rules", "approvals")


def include_all(app: FastAPI, web: Web) -> None:
    import importlib
    for area in AREAS:
        app.include_router(importlib.import_module(f"{__name__}.{area}").router(web))
