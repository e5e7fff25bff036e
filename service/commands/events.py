"""`baomi-collector events`: stored events, filtered, as text, JSON lines or CSV."""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import sys

import sqlalchemy as sa

from .. import db
from .common import add_config_arg, load_config

CSV_FIELDS = ("id", "agent_id", "seq", "time", "kind", "severity", "host", "user", "level", "action",
              "file_name", "file_sha256")


def add_parser(subs: argparse._SubParsersAction) -> None:
    p = subs.add_parser("events", help="stored events")
    p.add_argument("--since", metavar="ISO", help="only events at or after this time (e.g. 2026-11-01T00:00)")
    p.add_argument("--host", help="host name")
    p.add_argument("--kind", help="event kind, e.g. file.blocked (a trailing * matches a prefix)")
    p.add_argument("--agent", help="agent id")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="one stored event per line")
    fmt.add_argument("--csv", action="store_true")
    add_config_arg(p)
    p.set_defaults(func=cmd_events)


def cmd_events(args: argparse.Namespace) -> int:
    cfg = load_config(args)
    q = sa.select(db.events).order_by(db.events.c.pk)
    if args.since:
        try:
            since = dt.datetime.fromisoformat(args.since.replace("Z", "+00:00"))
        except ValueError:
            print(f"baomi-collector events: --since {args.since!r} is not an ISO time", file=sys.stderr)
            return 2
        q = q.where(db.events.c.time >= (since if since.tzinfo else since.replace(tzinfo=dt.timezone.utc)))
    if args.host:
        q = q.where(db.events.c.host_name == args.host)
    if args.agent:
        q = q.where(db.events.c.agent_id == args.agent)
    if args.kind:
        q = q.where(db.events.c.kind.startswith(args.kind[:-1]) if args.kind.endswith("*")
                    else db.events.c.kind == args.kind)
    engine = db.make_engine(cfg.url)
    writer = csv.writer(sys.stdout) if args.csv else None
    if writer:
        writer.writerow(CSV_FIELDS)
    with engine.connect() as conn:
        for r in conn.execution_options(stream_results=True, yield_per=2000).execute(q):
            body = json.loads(r.body)
            if args.json:
                sys.stdout.write(json.dumps(dict(body, id=r.event_id, agent_id=r.agent_id, seq=r.seq,
                                                 kind=r.kind, stored_at=r.received_at.isoformat()),
                                            ensure_ascii=False) + "\n")
            elif writer:
                writer.writerow((r.event_id, r.agent_id, r.seq, r.time.isoformat(), r.kind, r.severity, r.host_name,
                                 r.user_name, r.level, r.action, r.file_name, r.file_sha256))
            else:
                print(f"{r.time:%Y-%m-%d %H:%M:%S}  {r.severity:<8} {r.kind:<24} {r.host_name or '-':<16} "
                      f"{r.user_name or '-':<10} {r.file_name or ''}")
    return 0
