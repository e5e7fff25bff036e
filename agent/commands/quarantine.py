"""`baomi-agent quarantine list|restore|keygen`: the encrypted quarantine of blocked files."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from typing import TYPE_CHECKING

from baomi.common.cli import action
from .common import add_config_arg, load_config, print_json_line

if TYPE_CHECKING:
    from ..quarantine import Quarantine


def add_parser(subs: argparse._SubParsersAction) -> None:
    p = subs.add_parser("quarantine", help="list and restore blocked files (security administrator)")
    qs = p.add_subparsers(dest="qcmd", metavar="ACTION", required=True)

    action(qs, "list", cmd_list, "show quarantine entries", add_config_arg, json_help="one JSON object per line")
    rs = action(qs, "restore", cmd_restore, "decrypt an entry with the administrator's private key", add_config_arg)
    rs.add_argument("id", help="the entry id (from `quarantine list` or the file.blocked event)")
    rs.add_argument("--key", required=True, metavar="PRIVATE_KEY", help="the X25519 private key (PEM)")
    rs.add_argument("--to", required=True, metavar="DIR", help="folder to write the original file into")

    kg = qs.add_parser("keygen", help="make the administrator's X25519 key pair")
    kg.add_argument("--out", required=True, metavar="DIR",
                    help="writes DIR/quarantine.key (keep it off the endpoints) and DIR/quarantine.pub")
    kg.set_defaults(func=cmd_keygen)


def _open(args: argparse.Namespace) -> Quarantine:
    from ..quarantine import Quarantine  # here, not at the top: cryptography is slow to load
    cfg = load_config(args)
    return Quarantine(cfg.state_dir / "quarantine", None, cfg.quarantine.max_bytes)


def cmd_list(args: argparse.Namespace) -> int:
    q = _open(args)
    for entry in q.entries():
        row = entry.to_json()
        if args.json:
            print_json_line(row)
        else:
            medium = row.get("medium") or {}
            label = medium.get("fs_label") or medium.get("fs_uuid") or medium.get("devnode") or "-"
            print(f"{row['id']}  {row['time']}  {row['level'] or '-':<12} {row['size']:>10}  "
                  f"{label}  {row['original_path']}  {row['sha256']}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from ..quarantine import QuarantineError, load_private_key
    q = _open(args)
    try:
        private = load_private_key(args.key)
        entry = q.get(args.id)
    except QuarantineError as exc:
        print(f"baomi-agent: {exc}", file=sys.stderr)
        return 1
    out_dir = Path(args.to)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = os.path.basename(str(entry.header.get("original_path") or args.id)) or args.id
    target = out_dir / name
    if target.exists():
        print(f"baomi-agent: {target} already exists; choose another --to folder", file=sys.stderr)
        return 1
    tmp = out_dir / f".{name}.restoring"
    try:
        with open(tmp, "wb") as f:
            q.decrypt(args.id, private, f)
        os.replace(tmp, target)
    except QuarantineError as exc:
        tmp.unlink(missing_ok=True)
        print(f"baomi-agent: {exc}", file=sys.stderr)
        return 1
    _record_restore(args, entry.to_json(), target)
    print(target)
    return 0


def _record_restore(args: argparse.Namespace, row: dict, target: Path) -> None:
    """A restore takes classified content back out: the audit trail must show who did it."""
    import pwd

    from ..context import open_context
    try:
        ctx = open_context(load_config(args))
        uid = os.getuid()
        try:
            name = pwd.getpwuid(uid).pw_name
        except KeyError:
            name = str(uid)
        ctx.record("quarantine.restored", severity="high", user={"uid": uid, "name": name, "session": None},
                   file={"path": row.get("original_path"), "size": row.get("size"), "sha256": row.get("sha256"),
                         "level": row.get("level")},
                   action="allow", details={"entry": row.get("id"), "restored_to": str(target)})
        ctx.spool.close()
    except Exception as exc:  # the file is restored; say loudly that the record is missing
        print(f"baomi-agent: warning: restore not recorded in the event spool: {exc}", file=sys.stderr)


def cmd_keygen(args: argparse.Namespace) -> int:
    from ..quarantine import QuarantineError, keygen
    try:
        priv, pub = keygen(args.out)
    except QuarantineError as exc:
        print(f"baomi-agent: {exc}", file=sys.stderr)
        return 1
    print(f"private key: {priv} (give it only to the security administrator)")
    print(f"public key:  {pub} (set [quarantine] public_key in agent.toml to this file)")
    return 0
