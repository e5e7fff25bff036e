"""Helpers shared by collector sub-commands."""
from __future__ import annotations

import argparse
import os

from baomi.common.fsutil import private_dir

from .. import config as config_mod

DEFAULT = "/etc/baomi/collector.toml"


def add_config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", default=os.environ.get("BAOMI_COLLECTOR_CONFIG", DEFAULT),
                        help=f"collector.toml (default: $BAOMI_COLLECTOR_CONFIG or {DEFAULT})")


def load_config(args: argparse.Namespace) -> config_mod.CollectorConfig:
    cfg = config_mod.load(args.config)
    private_dir(cfg.state_dir)  # 0700 whatever the umask: the database and the console key live here
    return cfg
