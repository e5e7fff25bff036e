"""Run the collector's app (with the console) under uvicorn for the console tests:
python -m tests.console.serve CONFIG"""
from __future__ import annotations

import sys

import uvicorn

from baomi.service import config as config_mod
from baomi.service import db


def build_app(cfg: config_mod.CollectorConfig):
    try:
        from baomi.service.app import create_app  # the full collector, when present
    except ImportError:
        create_app = None
    if create_app is not None:
        return create_app(cfg)
    from fastapi import FastAPI

    from baomi.service.console import install
    app = FastAPI()
    install(app, cfg, db.make_engine(cfg.url))
    return app


def main() -> None:
    cfg = config_mod.load(sys.argv[1])
    uvicorn.run(build_app(cfg), host=cfg.host, port=cfg.port, log_level="warning")


if __name__ == "__main__":
    main()
