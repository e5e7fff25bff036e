"""`baomi-collector agents`: enrolled hosts, last seen, online or not, spool depth."""
from __future__ import annotations

import argparse
import json

import sqlalchemy as sa

from .. import db
from .common import add_config_arg, load_config


def add_parser(subs: argparse._SubParsersAction) -> None:
    p = subs.add_parser("agents", help="enrolled hosts and their state")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    add_config_arg(p)
    p.set_defaults(func=cmd_agents)


def cmd_agents(args: argparse.Namespace) -> int:
    cfg = load_config(args)
    engine = db.make_engine(cfg.url)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(db.agents).order_by(db.agents.c.host_name)).all()
    for r in rows:
        item = {"agent_id": r.agent_id, "host": r.host_name, "class": r.host_class,
                "last_seen": r.last_seen.isoformat() if r.last_seen else None, "online": bool(r.online),
                "last_seq": r.last_seq, "spool_depth": r.spool_depth, "version": r.agent_version,
                "policy_version": r.policy_version}
        if args.json:
            print(json.dumps(item, ensure_ascii=False))
        else:
            print(f"{r.host_name:<24} {'online' if r.online else 'OFFLINE':<8} {r.host_class:<13} "
                  f"last seen {item['last_seen'] or '-'}  seq {r.last_seq}  spool {r.spool_depth if r.spool_depth is not None else '-'}"
                  f"  {r.agent_id}")
    return 0
