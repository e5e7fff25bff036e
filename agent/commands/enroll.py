"""`baomi-agent enroll [--token T]`: register this host's key with the collector once."""
from __future__ import annotations

import argparse
import sys

from .common import add_config_arg, load_config


def add_parser(subs: argparse._SubParsersAction) -> None:
    p = subs.add_parser("enroll", help="present a one-time token and this host's key to the collector")
    add_config_arg(p)
    p.add_argument("--token", help="one-time token from `baomi-collector token create` "
                                   "(default: [collector] token)")
    p.add_argument("--force", action="store_true", help="enroll again even if already enrolled")
    p.set_defaults(func=cmd)


def cmd(args: argparse.Namespace) -> int:
    # imported here: every `baomi-agent` command builds the parser, and httpx is slow to load
    from ..enroll import EnrollError, enroll, is_enrolled
    from ..agent_key import load_or_create
    from ..spool import open_spool
    cfg = load_config(args)
    identity = load_or_create(cfg.state_dir)
    spool = open_spool(cfg.state_dir, identity.agent_id)
    try:
        if is_enrolled(spool, cfg.collector.url) and not args.force:
            print(f"already enrolled with {cfg.collector.url} as {identity.agent_id}")
            return 0
        host = {"name": cfg.host.name, "class": cfg.host.class_}
        try:
            answer = enroll(cfg.collector, identity, spool, host, token=args.token)
        except EnrollError as exc:
            print(f"baomi-agent enroll: {exc}", file=sys.stderr)
            return 2
        print(f"enrolled with {cfg.collector.url} as {answer['agent_id']}")
        return 0
    finally:
        spool.close()
