"""The shape both command lines share: sub-commands as plug-in modules, each with
add_parser(subparsers); one place for logging, exit codes and configuration errors."""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Callable, Sequence

from . import __version__
from .tomlconf import ConfigError


def build_parser(prog: str, description: str, package: str, commands: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--version", action="version", version=f"{prog} {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subs = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in commands:
        importlib.import_module(f"{package}.{name}").add_parser(subs)
    return parser


def run(parser: argparse.ArgumentParser, argv: list[str] | None, quiet_loggers: Sequence[str]) -> int:
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if not args.verbose:
        for noisy in quiet_loggers:  # one line per request or migration step is noise in a daemon's log
            logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"{parser.prog}: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


def action(subs: argparse._SubParsersAction, name: str, func: Callable[[argparse.Namespace], int],
           help: str, config_arg: Callable[[argparse.ArgumentParser], None],
           json_help: str | None = None) -> argparse.ArgumentParser:
    """One sub-command action: its parser, the --config option, optionally --json."""
    p = subs.add_parser(name, help=help)
    config_arg(p)
    if json_help:
        p.add_argument("--json", action="store_true", help=json_help)
    p.set_defaults(func=func)
    return p
