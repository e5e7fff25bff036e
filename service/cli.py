"""`baomi-collector`: the central collector's command line. Sub-commands live
in baomi.service.commands.<name> and provide add_parser(subparsers)."""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from baomi.common import __version__
from baomi.common.tomlconf import ConfigError

COMMANDS: list[str] = [
    "db",
    "user",
    "serve",
    "token",
    "agents",
    "events",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="baomi-collector", description="baomi central collector and console")
    parser.add_argument("--version", action="version", version=f"baomi-collector {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true")
    subs = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"baomi.service.commands.{name}").add_parser(subs)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if not args.verbose:
        for noisy in ("alembic", "httpx", "httpcore"):  # one line per request or migration step is noise in a daemon's log
            logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"baomi-collector: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
