"""`baomi-agent run --config FILE`: the daemon, in the foreground."""
from __future__ import annotations

import argparse

from .common import add_config_arg, load_config


def add_parser(subs: argparse._SubParsersAction) -> None:
    p = subs.add_parser("run", help="run the agent daemon in the foreground")
    add_config_arg(p)
    p.set_defaults(func=cmd)


def cmd(args: argparse.Namespace) -> int:
    from .. import daemon
    return daemon.run(load_config(args))
