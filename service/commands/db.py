"""`baomi-collector db upgrade`: apply schema migrations (also run by `serve` on start)."""
from __future__ import annotations

import argparse

from .. import db
from .common import add_config_arg, load_config


def add_parser(subs: argparse._SubParsersAction) -> None:
    p = subs.add_parser("db", help="database maintenance")
    dsubs = p.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    up = dsubs.add_parser("upgrade", help="apply schema migrations")
    add_config_arg(up)
    up.set_defaults(func=cmd_upgrade)


def cmd_upgrade(args: argparse.Namespace) -> int:
    cfg = load_config(args)
    db.upgrade(cfg.url)
    print(f"database at {cfg.url.split('@')[-1]} is at the newest schema")
    return 0
