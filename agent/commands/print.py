"""`baomi-agent print install|uninstall|status`: baomi's backend in every CUPS queue
(docs/printing.md)."""
from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from .common import add_config_arg, load_config, print_json_line

if TYPE_CHECKING:
    from ..config import AgentConfig
    from ..print.cups import Cups


def add_parser(subs: argparse._SubParsersAction) -> None:
    p = subs.add_parser("print", help="printing: put every CUPS queue through baomi, or take it out")
    psubs = p.add_subparsers(dest="print_command", metavar="ACTION", required=True)
    for name, func, text in (("install", cmd_install, "install the backend and wrap every queue"),
                             ("uninstall", cmd_uninstall, "give every queue its original device URI back"),
                             ("status", cmd_status, "each queue and whether it goes through baomi")):
        a = psubs.add_parser(name, help=text)
        add_config_arg(a)
        if name == "status":
            a.add_argument("--json", action="store_true", help="one JSON object per line")
        a.set_defaults(func=func)


def _cups(cfg: AgentConfig) -> Cups:
    from ..print.cups import Cups
    return Cups(cfg.print.cups_server)


def cmd_install(args: argparse.Namespace) -> int:
    from ..print import queues
    from ..print.cups import CupsError
    cfg = load_config(args)
    path = queues.install_backend(cfg.print.backend_dir, str(cfg.source) if cfg.source else args.config)
    print(f"backend: {path}")
    try:
        for q in queues.protect(_cups(cfg), cfg.state_dir):
            print(f"wrapped {q.name}: {q.uri}")
    except CupsError as exc:
        print(f"baomi-agent print install: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_uninstall(args: argparse.Namespace) -> int:
    from ..print import queues
    from ..print.cups import CupsError
    cfg = load_config(args)
    try:
        for name, uri in queues.unprotect(_cups(cfg), cfg.state_dir):
            print(f"restored {name}: {uri}")
    except CupsError as exc:
        print(f"baomi-agent print uninstall: {exc}", file=sys.stderr)
        return 1
    queues.remove_backend(cfg.print.backend_dir)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from ..print.cups import CupsError, is_wrapped
    cfg = load_config(args)
    try:
        found = _cups(cfg).queues()
    except CupsError as exc:
        print(f"baomi-agent print status: {exc}", file=sys.stderr)
        return 1
    for q in found:
        row = {"queue": q.name, "uri": q.uri, "make_model": q.make_model, "protected": is_wrapped(q.uri)}
        if args.json:
            print_json_line(row)
        else:
            print(f"{q.name:<20} {'protected' if row['protected'] else 'UNPROTECTED':<12} {q.uri}")
    return 0 if all(is_wrapped(q.uri) for q in found) else 1
