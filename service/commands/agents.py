"""`baomi-collector agents`: enrolled hosts, last seen, online or not, spool depth, and WEAKER
for a host whose latest heartbeat names a medium not held or scan workers not fully confined."""
from __future__ import annotations

import argparse
import json
import sys

import sqlalchemy as sa

from .. import db
from ..protection import is_weaker
from ..enroll import EnrollError, approve_reenrollment
from .common import add_config_arg, load_config


def add_parser(subs: argparse._SubParsersAction) -> None:
    p = subs.add_parser("agents", help="enrolled hosts and their state; `agents approve AGENT_ID` lets an "
                                       "enrolled agent enroll once more")
    p.add_argument("action", nargs="?", choices=("list", "approve"), default="list")
    p.add_argument("agent_id", nargs="?", help="for approve: the agent's id (as `agents` lists it)")
    p.add_argument("--by", default="cli", help="for approve: who approves (recorded)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    add_config_arg(p)
    p.set_defaults(func=cmd_agents)


def cmd_agents(args: argparse.Namespace) -> int:
    cfg = load_config(args)
    engine = db.make_engine(cfg.url)
    if args.action == "approve":
        if not args.agent_id:
            print("baomi-collector agents approve: give the agent's id", file=sys.stderr)
            return 2
        try:
            host = approve_reenrollment(engine, args.agent_id, args.by)
        except EnrollError as exc:
            print(f"baomi-collector agents approve: {exc}", file=sys.stderr)
            return 1
        print(f"agent {args.agent_id} ({host}) may enroll once more")
        return 0
    with engine.connect() as conn:
        rows = conn.execute(sa.select(db.agents).order_by(db.agents.c.host_name)).all()
    for r in rows:
        item = {"agent_id": r.agent_id, "host": r.host_name, "class": r.host_class,
                "last_seen": r.last_seen.isoformat() if r.last_seen else None, "online": bool(r.online),
                "last_seq": r.last_seq, "spool_depth": r.spool_depth, "version": r.agent_version,
                "policy_version": r.policy_version,
                # from its latest heartbeat (service/protection.py); None: not reported
                "weaker_media": r.weaker_media, "scan_workers": r.scan_workers}
        if args.json:
            print(json.dumps(item, ensure_ascii=False))
        else:
            print(f"{r.host_name:<24} {'online' if r.online else 'OFFLINE':<8} {r.host_class:<13} "
                  f"last seen {item['last_seen'] or '-'}  seq {r.last_seq}  spool {r.spool_depth if r.spool_depth is not None else '-'}"
                  f"{'  WEAKER' if is_weaker(r.weaker_media, r.scan_workers) else ''}  {r.agent_id}")
    return 0
