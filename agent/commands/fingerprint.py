"""`baomi-agent fingerprint add|list|remove`: registered documents whose
excerpts are recognised wherever they turn up (hashes only are stored).
`baomi-agent fingerprint export` writes one document's hashes to a file for the
console's 规则 page, which distributes them to every agent in the signed rules
document (docs/rules.md "Central rules")."""
from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path
from typing import Any, Callable

from baomi.common.cli import action
from baomi.common.levels import LEVEL_IDS, Level
from .common import add_config_arg, load_config, print_json_line


def add_parser(subs: argparse._SubParsersAction) -> None:
    p = subs.add_parser("fingerprint", help="register documents by fingerprint (security administrator)")
    fs = p.add_subparsers(dest="fcmd", metavar="ACTION", required=True)
    a = action(fs, "add", cmd_add, "fingerprint a document at a level", add_config_arg)
    a.add_argument("file", type=Path)
    a.add_argument("--level", required=True, choices=[l for l in LEVEL_IDS if l != "public"])
    a.add_argument("--name", help="name shown in evidence (default: the file name)")
    e = action(fs, "export", cmd_export, "write a document's fingerprints to a file for the console", add_config_arg)
    e.add_argument("file", type=Path)
    e.add_argument("--level", required=True, choices=[l for l in LEVEL_IDS if l != "public"])
    e.add_argument("--name", help="name shown in evidence (default: the file name)")
    e.add_argument("-o", "--output", type=Path, help="where to write (default: FILE.fingerprint.json here)")
    action(fs, "list", cmd_list, "registered documents", add_config_arg, json_help="one JSON object per line")
    action(fs, "remove", cmd_remove, "forget a registered document", add_config_arg).add_argument(
        "name", help="its name or id")


def _db(args: argparse.Namespace):
    from ..scan.fingerprint import FingerprintDB, default_db
    return FingerprintDB(default_db(load_config(args)))


def _change(args: argparse.Namespace, change: Callable[[Any], Any]) -> Any:
    """Apply one change to the fingerprint database; None (and a message) when it is refused."""
    from ..scan.fingerprint import FingerprintError
    db = _db(args)
    try:
        return change(db)
    except FingerprintError as exc:
        print(f"baomi-agent fingerprint: {exc}", file=sys.stderr)
        return None
    finally:
        db.close()


def _read(args: argparse.Namespace) -> tuple[str, str] | int:
    """(sha256, body text) of args.file, or the exit code after saying why not."""
    from ..scan.extract import extract
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
    return hashlib.sha256(data).hexdigest(), "\n".join(c.text for c in ex.chunks if c.zone != "metadata")


def cmd_export(args: argparse.Namespace) -> int:
    import json
    from baomi.common import rulesdoc
    from baomi.common.fsutil import atomic_write
    from ..scan.fingerprint import MAX_CHARS, fingerprints
    from ..scan.normalize import for_fingerprint
    got = _read(args)
    if isinstance(got, int):
        return got
    sha, text = got
    hashes = fingerprints(text)
    if not hashes:
        print(f"baomi-agent fingerprint: {args.file}: no text to fingerprint (register it by upload: its content hash)",
              file=sys.stderr)
        return 1
    name = args.name or args.file.name
    out = args.output or Path(f"{args.file.name}.fingerprint.json")
    doc = rulesdoc.export(name, args.level, sha, len(for_fingerprint(text[:MAX_CHARS])), hashes)
    atomic_write(out, json.dumps(doc, ensure_ascii=False).encode("utf-8"), mode=0o644)
    print(f"wrote {out}: {len(hashes)} fingerprints of {name!r} ({args.level}); upload it on the console's 规则 page")
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    got = _read(args)
    if isinstance(got, int):
        return got
    sha, text = got
    doc = _change(args, lambda db: db.add(args.name or args.file.name, Level.parse(args.level),
                                          sha, text, str(args.file)))
    if doc is None:
        return 1
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
    doc = _change(args, lambda db: db.remove(args.name))
    if doc is None:
        return 1
    print(f"removed {doc.name!r}")
    return 0
