"""`baomi-agent media keygen|register|list`: the media registry (docs/media.md)."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from baomi.common.levels import Level
from baomi.common.tomlconf import ConfigError
from .common import add_config_arg, load_config, print_json_line


def add_parser(subs: argparse._SubParsersAction) -> None:
    p = subs.add_parser("media", help="removable media: list attached media, register media, make signing keys")
    msubs = p.add_subparsers(dest="media_command", metavar="ACTION", required=True)

    k = msubs.add_parser("keygen", help="make the security administrator's Ed25519 key pair")
    k.add_argument("--private", required=True, metavar="PEM", help="private key file to create (mode 0600)")
    k.add_argument("--public", required=True, metavar="PEM",
                   help="public key file to create (agent.toml [media] registry_public_key)")
    k.set_defaults(func=cmd_keygen)

    r = msubs.add_parser("register", help="sign a registration record into the registry file")
    add_config_arg(r)
    r.add_argument("--key", required=True, metavar="PEM", help="the security administrator's private key")
    r.add_argument("--registry", metavar="FILE", help="registry file (default: [media] registry)")
    r.add_argument("--id", required=True, help="medium id, e.g. M-2026-0001")
    r.add_argument("--owner", required=True, help="who the medium is issued to")
    r.add_argument("--level", required=True, help="level ceiling: public, internal, confidential, secret, top_secret")
    r.add_argument("--hosts", default="classified,unclassified",
                   help="host classes it may be used on, comma separated (default: both)")
    r.add_argument("--device", metavar="DEVNODE", help="read the identity from this block device (e.g. /dev/sdb1)")
    for flag in ("vendor-id", "product-id", "serial", "fs-uuid", "fs-label"):
        r.add_argument(f"--{flag}", help=f"{flag.replace('-', ' ')} (overrides what --device found)")
    r.set_defaults(func=cmd_register)

    ls = msubs.add_parser("list", help="attached removable media with class, level and gate decision")
    add_config_arg(ls)
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    ls.set_defaults(func=cmd_list)


def cmd_keygen(args: argparse.Namespace) -> int:
    from ..media.registry import generate_keypair
    if Path(args.private).exists():
        print(f"baomi-agent: {args.private} exists; refusing to overwrite a key", file=sys.stderr)
        return 1
    generate_keypair(args.private, args.public)
    print(f"private key: {args.private} (keep it offline; mode 0600)\npublic key:  {args.public}")
    return 0


def _device_identity(devnode: str, extra: list[str]) -> dict[str, str]:
    from ..media.identity import identify
    from ..media.sysfs import block_device
    name = os.path.basename(os.path.realpath(devnode))
    dev = block_device(name, "/", extra)
    if dev is None:
        raise ConfigError(devnode, None, "no such block device in /sys/class/block")
    return identify(dev)


def cmd_register(args: argparse.Namespace) -> int:
    from ..media import registry as reg
    cfg = load_config(args)
    try:
        level = Level.parse(args.level)
    except ValueError as exc:
        print(f"baomi-agent: --level: {exc}", file=sys.stderr)
        return 2
    hosts = [h.strip() for h in args.hosts.split(",") if h.strip()]
    bad = [h for h in hosts if h not in reg.HOST_CLASSES]
    if not hosts or bad:
        print(f"baomi-agent: --hosts: expected classified and/or unclassified, got {args.hosts!r}", file=sys.stderr)
        return 2
    ident = _device_identity(args.device, cfg.media.extra_removable) if args.device else {}
    body = {"id": args.id, "owner": args.owner, "level": level.id, "hosts": hosts}
    for field in ("vendor_id", "product_id", "serial", "fs_uuid", "fs_label"):
        value = getattr(args, field)
        body[field] = value if value is not None else str(ident.get(field) or "")
    if not body["fs_uuid"]:
        print("baomi-agent: no filesystem UUID (give --device with a formatted medium, or --fs-uuid)",
              file=sys.stderr)
        return 2
    key = reg.load_private_key(args.key)
    record = reg.sign_record(body, key)
    path = Path(args.registry or cfg.media.registry)
    reg.add_record(path, record)
    print(json.dumps({k: v for k, v in record.items() if k != "signature"}, ensure_ascii=False))
    print(f"registered {args.id} in {path}", file=sys.stderr)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from ..media.listing import attached_media
    cfg = load_config(args)
    media = attached_media(cfg)
    for m in media:
        if args.json:
            print_json_line(m)
        else:
            mounts = ",".join(x["mountpoint"] for x in m["mounts"]) or "-"
            print(f"{m['devnode']:<14} {m['class']:<10} {m['level'] or '-':<12} {m['action']:<9} "
                  f"{m['enforcement'] or '-':<11} {m['registry_id'] or '-':<14} {m['fs_type'] or '?':<6} "
                  f"{m['fs_uuid'] or '-':<38} {mounts}")
    if not media and not args.json:
        print("no removable media attached")
    return 0
