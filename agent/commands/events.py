"""`baomi-agent events [--json]`: read the local event spool."""
from __future__ import annotations

import argparse

from .common import add_config_arg, load_config, print_json_line


def add_parser(subs: argparse._SubParsersAction) -> None:
    p = subs.add_parser("events", help="show events recorded on this host")
    add_config_arg(p)
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--since-seq", type=int, default=0, metavar="N", help="only events after sequence N")
    p.add_argument("--kind", help="only this kind or kind prefix (e.g. medium)")
    p.set_defaults(func=cmd)


def cmd(args: argparse.Namespace) -> int:
    from ..agent_key import load_or_create  # cryptography: loaded only by the commands that need it
    from ..spool import open_spool
    cfg = load_config(args)
    if not (cfg.state_dir / "spool.db").exists():
        # nothing recorded yet; reading must not create the spool under the daemon's feet
        return 0
    identity = load_or_create(cfg.state_dir)
    spool = open_spool(cfg.state_dir, identity.agent_id)
    try:
        for event in spool.iter_events(args.since_seq, args.kind):
            if args.json:
                print_json_line(event)
            else:
                who = (event.get("user") or {}).get("name") or "-"
                print(f"{event['seq']:>7} {event['time']} {event['severity']:<8} {event['kind']:<28} "
                      f"{who:<10} {event.get('action') or ''}")
    finally:
        spool.close()
    return 0
