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
    from ..context import open_context
    cfg = load_config(args)
    ctx = open_context(cfg)
    identity, spool = ctx.identity, ctx.spool
    try:
        if is_enrolled(spool, cfg.collector.url) and not args.force:
            print(f"already enrolled with {cfg.collector.url} as {identity.agent_id}")
            return 0
        try:
            answer = enroll(cfg.collector, identity, spool, ctx.host, token=args.token)
        except EnrollError as exc:
            print(f"baomi-agent enroll: {exc}", file=sys.stderr)
            return 2
        print(f"enrolled with {cfg.collector.url} as {answer['agent_id']}")
        return 0
    finally:
        spool.close()
