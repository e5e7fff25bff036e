"""`baomi-collector token create|list|revoke`: one-time enrollment tokens."""
from __future__ import annotations

import argparse
import csv
import re
import sys
from typing import TextIO

from .. import db
from ..enroll import EnrollError, create_tokens, list_tokens, revoke
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
    c.add_argument("--class", dest="host_class", choices=CLASSES,
                   help="the class of that host (default: what the agent says)")
    c.add_argument("--expires", metavar="DURATION", help="lifetime as 90s, 30m, 12h or 7d (instead of --ttl)")
    c.add_argument("--count", type=int, metavar="N", help=f"N tokens at once (1 to {MAX_TOKENS}), for a rollout")
    c.add_argument("--hosts", metavar="FILE", help="one token per line of FILE, 'host name[,class]' "
                                                   "(# comments; - reads stdin)")
    c.add_argument("--csv", action="store_true", help="print token,expires_at,host_name,host_class with a header")
    action(ts, "list", cmd_list, "tokens with their state (hash prefix, never the token)", add_config_arg)
    action(ts, "revoke", cmd_revoke, "expire an unused token", add_config_arg).add_argument(
        "prefix", help="the start of its hash, as `token list` shows it")


CLASSES = ["classified", "unclassified"]
MAX_TOKENS = 10000
_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class UsageError(ValueError):
    """A bad option or host file: said in one line, exit 2."""


def parse_duration(text: str) -> int:
    m = _DURATION.match(text.strip())
    if not m or int(m.group(1)) < 1:
        raise UsageError(f"--expires must be a whole number with s, m, h or d (e.g. 7d), got {text!r}")
    return int(m.group(1)) * _UNIT[m.group(2)]


def read_hosts(f: TextIO, name: str) -> list[tuple[str | None, str | None]]:
    """'name[,class]' lines; every problem names its line."""
    out: list[tuple[str | None, str | None]] = []
    seen: set[str] = set()
    for n, row in enumerate(csv.reader(f), 1):
        if not row or not row[0].strip() or row[0].lstrip().startswith("#"):
            continue
        host = row[0].strip()
        cls = row[1].strip() if len(row) > 1 and row[1].strip() else None
        if len(row) > 2 or not len(host) <= 255 or (cls is not None and cls not in CLASSES):
            raise UsageError(f"{name} line {n}: expected 'host name[,classified|unclassified]' "
                             f"(name up to 255 characters), got {','.join(row)!r}")
        if host in seen:
            raise UsageError(f"{name} line {n}: {host!r} is listed twice")
        seen.add(host)
        out.append((host, cls))
    if not out:
        raise UsageError(f"{name} names no host")
    if len(out) > MAX_TOKENS:
        raise UsageError(f"{name} names {len(out)} hosts; at most {MAX_TOKENS} at once")
    return out


def _wanted(args: argparse.Namespace) -> list[tuple[str | None, str | None]]:
    if args.hosts is not None and (args.count is not None or args.host is not None):
        raise UsageError("--hosts names the hosts itself: not with --count or --host")
    if args.count is not None and args.host is not None:
        raise UsageError("--host names one host: not with --count")
    if args.ttl is not None and args.expires is not None:
        raise UsageError("give --ttl or --expires, not both")
    if args.hosts is not None:
        if args.hosts == "-":
            return read_hosts(sys.stdin, "stdin")
        try:
            with open(args.hosts, newline="", encoding="utf-8-sig") as f:
                return read_hosts(f, args.hosts)
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read {args.hosts}: {exc}")
    if args.count is not None and not 1 <= args.count <= MAX_TOKENS:
        raise UsageError(f"--count must be 1 to {MAX_TOKENS}, got {args.count}")
    if args.host is not None and not 0 < len(args.host) <= 255:
        raise UsageError("--host must be 1 to 255 characters")
    return [(args.host, args.host_class)] * (args.count or 1)


def _engine(args: argparse.Namespace):
    cfg = load_config(args)
    db.upgrade(cfg.url)
    return cfg, db.make_engine(cfg.url)


def cmd_create(args: argparse.Namespace) -> int:
    try:
        if args.ttl is not None and args.ttl < 1:
            raise UsageError("--ttl must be at least 1 second")
        ttl = parse_duration(args.expires) if args.expires is not None else args.ttl
        wanted = _wanted(args)
    except UsageError as exc:
        print(f"baomi-collector token: {exc}", file=sys.stderr)
        return 2
    cfg, engine = _engine(args)
    made = create_tokens(engine, ttl or cfg.token_ttl_s, wanted)
    if args.csv:
        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(["token", "expires_at", "host_name", "host_class"])
        for (token, expires), (host, cls) in zip(made, wanted):
            w.writerow([token, expires.isoformat(timespec="seconds"), host or "", cls or ""])
    else:
        for token, _expires in made:
            print(token)
    print(f"{len(made)} token(s), expires {made[0][1].isoformat(timespec='seconds')}; "
          "give each to one agent's [collector] token", file=sys.stderr)
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
