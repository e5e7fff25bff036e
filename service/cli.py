"""`baomi-collector`: the central collector's command line. Sub-commands live
in baomi.service.commands.<name> and provide add_parser(subparsers)."""
from __future__ import annotations

import argparse
import sys

from baomi.common import cli

COMMANDS: list[str] = [
    "db",
    "user",
    "serve",
    "token",
    "agents",
    "events",
]


def build_parser() -> argparse.ArgumentParser:
    return cli.build_parser("baomi-collector", "baomi central collector and console", "baomi.service.commands",
                            COMMANDS)


def main(argv: list[str] | None = None) -> int:
    return cli.run(build_parser(), argv, ("alembic", "httpx", "httpcore"))


if __name__ == "__main__":
    sys.exit(main())
