"""Helpers shared by sub-commands."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .. import config as config_mod


def add_config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE",
                        help="agent.toml (default: $BAOMI_AGENT_CONFIG or /etc/baomi/agent.toml)")


def load_config(args: argparse.Namespace) -> config_mod.AgentConfig:
    return config_mod.load(getattr(args, "config", None))


def print_json_line(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, sort_keys=True) + "\n")
