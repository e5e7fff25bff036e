"""`baomi-agent`: the endpoint's command line. Each sub-command lives in its own
module under baomi.agent.commands and provides add_parser(subparsers)."""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from . import __version__
from baomi.common.tomlconf import ConfigError

COMMANDS: list[str] = [
    "run",
    "events",
    "media",
    "quarantine",
    "scan",
    "fingerprint",
    "enroll",
    "config",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="baomi-agent", description="baomi endpoint agent (保密)")
    parser.add_argument("--version", action="version", version=f"baomi-agent {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subs = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"baomi.agent.commands.{name}").add_parser(subs)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if not args.verbose:
        for noisy in ("httpx", "httpcore"):  # one line per request or migration step is noise in a daemon's log
            logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"baomi-agent: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
