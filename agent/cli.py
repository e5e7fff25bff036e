"""`baomi-agent`: the endpoint's command line. Each sub-command lives in its own
module under baomi.agent.commands and provides add_parser(subparsers)."""
from __future__ import annotations

import argparse
import sys

from baomi.common import cli

COMMANDS: list[str] = [
    "run",
    "events",
    "media",
    "quarantine",
    "scan",
    "print",
    "fingerprint",
    "enroll",
    "config",
    "check",
    "discover",
    "approvals",
]


def build_parser() -> argparse.ArgumentParser:
    return cli.build_parser("baomi-agent", "baomi endpoint agent (保密)", "baomi.agent.commands", COMMANDS)


def main(argv: list[str] | None = None) -> int:
    return cli.run(build_parser(), argv, ("httpx", "httpcore"))


if __name__ == "__main__":
    sys.exit(main())
