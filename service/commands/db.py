"""`baomi-collector db upgrade`: apply schema migrations (also run by `serve` on start).
`baomi-collector db migrate-to URL`: copy this collector's data into PostgreSQL."""
from __future__ import annotations

import argparse
import sys

from .. import db
from .common import add_config_arg, load_config


def add_parser(subs: argparse._SubParsersAction) -> None:
    p = subs.add_parser("db", help="database maintenance")
    dsubs = p.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    up = dsubs.add_parser("upgrade", help="apply schema migrations")
    add_config_arg(up)
    up.set_defaults(func=cmd_upgrade)
    mig = dsubs.add_parser("migrate-to", help="copy this collector's database (SQLite) into PostgreSQL; "
                           "run again to copy only what is new")
    mig.add_argument("url", metavar="URL", help="the target, e.g. postgresql://baomi@db.example.internal/baomi")
    mig.add_argument("--force", action="store_true",
                     help="merge into a non-empty target that is not an earlier copy of this collector")
    add_config_arg(mig)
    mig.set_defaults(func=cmd_migrate_to)


def cmd_upgrade(args: argparse.Namespace) -> int:
    cfg = load_config(args)
    db.upgrade(cfg.url)
    print(f"database at {cfg.url.split('@')[-1]} is at the newest schema")
    return 0


def cmd_migrate_to(args: argparse.Namespace) -> int:
    from ..migrate import MigrateRefused, migrate
    cfg = load_config(args)
    try:
        copied = migrate(cfg.url, args.url, force=args.force, progress=lambda line: print(line, flush=True))
    except MigrateRefused as exc:
        print(f"baomi-collector db migrate-to: {exc}", file=sys.stderr)
        return 2
    print(f"done: {copied.events} event(s) copied, {copied.skipped} already in the target, "
          f"{copied.agents} agent(s), {copied.triage} triage note(s); "
          "now set database_url in collector.toml to the target")
    return 0
