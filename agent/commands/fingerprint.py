"""`baomi-agent fingerprint add|list|remove`: registered documents whose
excerpts are recognised wherever they turn up (hashes only are stored)."""
from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

from baomi.common.levels import LEVEL_IDS, Level
from .common import add_config_arg, load_config, print_json_line


def add_parser(subs: argparse._SubParsersAction) -> None:
    p = subs.add_parser("fingerprint", help="register documents by fingerprint (security administrator)")
    fs = p.add_subparsers(dest="fcmd", metavar="ACTION", required=True)
    a = fs.add_parser("add", help="fingerprint a document at a level")
    a.add_argument("file", type=Path)
    a.add_argument("--level", required=True, choices=[l for l in LEVEL_IDS if l != "public"])
    a.add_argument("--name", help="name shown in evidence (default: the file name)")
    add_config_arg(a)
    a.set_defaults(func=cmd_add)
    ls = fs.add_parser("list", help="registered documents")
    ls.add_argument("--json", action="store_true")
    add_config_arg(ls)
    ls.set_defaults(func=cmd_list)
    rm = fs.add_parser("remove", help="forget a registered document")
    rm.add_argument("name", help="its name or id")
    add_config_arg(rm)
    rm.set_defaults(func=cmd_remove)


def _db(args: argparse.Namespace):
    from ..scan.fingerprint import FingerprintDB, default_db
    return FingerprintDB(default_db(load_config(args)))


def cmd_add(args: argparse.Namespace) -> int:
    from ..scan.extract import extract
    from ..scan.fingerprint import FingerprintError
    from ..scan.limits import Limits
    cfg = load_config(args)
    try:
        data = args.file.read_bytes()
    except OSError as exc:
        print(f"baomi-agent fingerprint: {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    ex = extract(args.file, Limits.from_config(cfg.scan))
    if not ex.inspectable:
        print(f"baomi-agent fingerprint: {args.file}: could not be fully read ({ex.reason}: {ex.detail})",
              file=sys.stderr)
        return 1
    text = "\n".join(c.text for c in ex.chunks if c.zone != "metadata")
    db = _db(args)
    try:
        doc = db.add(args.name or args.file.name, Level.parse(args.level), hashlib.sha256(data).hexdigest(), text,
                     str(args.file))
    except FingerprintError as exc:
        print(f"baomi-agent fingerprint: {exc}", file=sys.stderr)
        return 1
    finally:
        db.close()
    print(f"registered {doc.name!r} as {doc.level.id}: {doc.fingerprints} fingerprints over {doc.chars} characters")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    db = _db(args)
    try:
        for doc in db.list():
            if args.json:
                print_json_line(doc.to_json())
            else:
                print(f"{doc.id:>4}  {doc.level.id:<12} {doc.fingerprints:>7} fp  {doc.added_at}  {doc.name}")
    finally:
        db.close()
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from ..scan.fingerprint import FingerprintError
    db = _db(args)
    try:
        doc = db.remove(args.name)
    except FingerprintError as exc:
        print(f"baomi-agent fingerprint: {exc}", file=sys.stderr)
        return 1
    finally:
        db.close()
    print(f"removed {doc.name!r}")
    return 0
