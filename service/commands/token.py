"""`baomi-collector token create|list|revoke`: one-time enrollment tokens."""
from __future__ import annotations

import argparse
import sys

from .. import db
from ..enroll import EnrollError, create_token, list_tokens, revoke
from ..own_events import now
from baomi.common.cli import action
from .common import add_config_arg, load_config


def add_parser(subs: argparse._SubParsersAction) -> None:
    p = subs.add_parser("token", help="enrollment tokens for new agents (system administrator)")
    ts = p.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    c = action(ts, "create", cmd_create, "print a new one-time token alone on stdout", add_config_arg)
    c.add_argument("--ttl", type=int, metavar="SECONDS", help="lifetime (default: token_ttl_s of collector.toml)")
    c.add_argument("--host", metavar="NAME", help="the host this token enrolls: its name in the collector, "
                                                  "whatever the agent calls itself (e.g. 财务部-PC01)")
    c.add_argument("--class", dest="host_class", choices=["classified", "unclassified"],
                   help="the class of that host (default: what the agent says)")
    action(ts, "list", cmd_list, "tokens with their state (hash prefix, never the token)", add_config_arg)
    action(ts, "revoke", cmd_revoke, "expire an unused token", add_config_arg).add_argument(
        "prefix", help="the start of its hash, as `token list` shows it")


def _engine(args: argparse.Namespace):
    cfg = load_config(args)
    db.upgrade(cfg.url)
    return cfg, db.make_engine(cfg.url)


def cmd_create(args: argparse.Namespace) -> int:
    cfg, engine = _engine(args)
    if args.ttl is not None and args.ttl < 1:
        print("baomi-collector token: --ttl must be at least 1 second", file=sys.stderr)
        return 2
    if args.host is not None and not 0 < len(args.host) <= 255:
        print("baomi-collector token: --host must be 1 to 255 characters", file=sys.stderr)
        return 2
    token, expires = create_token(engine, args.ttl or cfg.token_ttl_s, host_name=args.host,
                                  host_class=args.host_class)
    print(token)
    print(f"expires {expires.isoformat(timespec='seconds')}; give it to the agent's [collector] token",
          file=sys.stderr)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    _cfg, engine = _engine(args)
    t = now()
    for r in list_tokens(engine):
        expires = r.expires_at if r.expires_at.tzinfo else r.expires_at.replace(tzinfo=t.tzinfo)
        state = f"used by {r.used_by}" if r.used_at else ("expired" if expires < t else "unused")
        print(f"{r.token_hash[:12]}  created {r.created_at:%Y-%m-%d %H:%M}  expires {expires:%Y-%m-%d %H:%M}  {state}")
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    _cfg, engine = _engine(args)
    try:
        n = revoke(engine, args.prefix)
    except EnrollError as exc:
        print(f"baomi-collector token: {exc}", file=sys.stderr)
        return 2
    if not n:
        print(f"baomi-collector token: no unused token starts with {args.prefix}", file=sys.stderr)
        return 1
    print(f"revoked {n} token(s)")
    return 0
