"""Helpers shared by collector sub-commands."""
from __future__ import annotations

import argparse
import os

from .. import config as config_mod

DEFAULT = "/etc/baomi/collector.toml"


def add_config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", default=os.environ.get("BAOMI_COLLECTOR_CONFIG", DEFAULT),
                        help=f"collector.toml (default: $BAOMI_COLLECTOR_CONFIG or {DEFAULT})")


def load_config(args: argparse.Namespace) -> config_mod.CollectorConfig:
    cfg = config_mod.load(args.config)
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    return cfg
