"""The media registry (media.toml): records signed by the security administrator.

    [[medium]]
    id = "M-0001"
    owner = "张三"
    level = "secret"                 # level ceiling
    hosts = ["classified"]           # host classes it may be used on
    vendor_id = "0781"               # binding: USB ids and serial (may be empty) + fs UUID (required)
    product_id = "5567"
    serial = "4C530001"
    fs_uuid = "1234-ABCD"
    fs_label = "WORK"
    issued = "2026-11-22T10:00:00Z"
    signature = "base64 Ed25519 signature over the canonical JSON of every other field"

Only a record whose signature verifies makes a medium "registered"; the others
are kept apart as forged so the agent can raise an event when they appear.
"""
from __future__ import annotations

import base64
import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from baomi.common import media_registry as media_rules
from baomi.common.events import canonical
from baomi.common.fsutil import atomic_write
from baomi.common.keys import write_keypair
from baomi.common.levels import Level
from baomi.common.tomlconf import ConfigError, read_toml
from .identity import BINDING_KEYS, matches

HOST_CLASSES = ("classified", "unclassified")
SIGNED_FIELDS = ("id", "owner", "level", "hosts", *BINDING_KEYS, "fs_label", "issued")


@dataclass
class Record:
    id: str
    owner: str
    level: Level
    hosts: list[str]
    binding: dict[str, str]
    fs_label: str = ""
    issued: str = ""
    signature: str = ""
    problem: str = ""          # why the signature did not verify ("" when it did)
    source: str = "local"      # "local" (media.toml) or "central" (the signed registry document)
    expires: str = ""          # central registrations: last valid day (UTC), "" for none

    def body(self) -> dict[str, Any]:
        return {"id": self.id, "owner": self.owner, "level": self.level.id, "hosts": list(self.hosts),
                **{k: self.binding.get(k, "") for k in BINDING_KEYS}, "fs_label": self.fs_label,
                "issued": self.issued}


@dataclass
class Registry:
    path: Path | None = None
    records: list[Record] = field(default_factory=list)   # verified
    forged: list[Record] = field(default_factory=list)    # bad or missing signature
    errors: list[str] = field(default_factory=list)       # records skipped for bad fields
    central_version: int = 0                              # the central document merged in (0: none)
    revoked: list[str] = field(default_factory=list)      # ids the central document revokes
    overridden: list[str] = field(default_factory=list)   # media.toml ids a central entry replaced or revoked

    def lookup(self, identity: dict[str, Any]) -> tuple[Record | None, Record | None]:
        """(verified record, forged record) that bind to this medium."""
        good = next((r for r in self.records if matches(r.binding, identity)), None)
        bad = None if good else next((r for r in self.forged if matches(r.binding, identity)), None)
        return good, bad


def signed_bytes(body: dict[str, Any]) -> bytes:
    return canonical({k: body.get(k, "") for k in SIGNED_FIELDS})


def load_public_key(path: Path | str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except FileNotFoundError:
        raise ConfigError(path, None, "public key file not found") from None
    except ValueError as exc:
        raise ConfigError(path, None, f"not a PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(path, None, "not an Ed25519 public key")
    return key


def load_private_key(path: Path | str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except FileNotFoundError:
        raise ConfigError(path, None, "private key file not found") from None
    except (ValueError, TypeError) as exc:
        raise ConfigError(path, None, f"not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(path, None, "not an Ed25519 private key")
    return key


def _parse_record(raw: Any, path: Path, index: int) -> Record:
    where = f"medium[{index}]"
    if not isinstance(raw, dict):
        raise ConfigError(path, where, "expected a table")
    known = set(SIGNED_FIELDS) | {"signature"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(path, f"{where}.{unknown[0]}", f"unknown key (known: {', '.join(sorted(known))})")
    for key in ("id", "level", "fs_uuid"):
        if not isinstance(raw.get(key), str) or not raw.get(key):
            raise ConfigError(path, f"{where}.{key}", "required, a non-empty string")
    for key in ("owner", "vendor_id", "product_id", "serial", "fs_label", "issued", "signature"):
        if not isinstance(raw.get(key, ""), str):
            raise ConfigError(path, f"{where}.{key}", "expected a string")
    try:
        level = Level.parse(raw["level"])
    except ValueError as exc:
        raise ConfigError(path, f"{where}.level", str(exc)) from None
    hosts = raw.get("hosts", list(HOST_CLASSES))
    if not isinstance(hosts, list) or not hosts or any(h not in HOST_CLASSES for h in hosts):
        raise ConfigError(path, f"{where}.hosts", f"expected a non-empty list of {', '.join(HOST_CLASSES)}")
    return Record(id=raw["id"], owner=raw.get("owner", ""), level=level, hosts=list(hosts),
                  binding={k: raw.get(k, "") for k in BINDING_KEYS}, fs_label=raw.get("fs_label", ""),
                  issued=raw.get("issued", ""), signature=raw.get("signature", ""))


def verify(record: Record, key: Ed25519PublicKey | None, raw: dict[str, Any]) -> str:
    """'' if the record's signature verifies under `key`, else why not."""
    if not record.signature:
        return "missing signature"
    if key is None:
        return "no registry public key configured ([media] registry_public_key)"
    try:
        sig = base64.b64decode(record.signature, validate=True)
    except ValueError:
        return "signature is not base64"
    try:
        key.verify(sig, signed_bytes({**raw, "hosts": raw.get("hosts", list(HOST_CLASSES))}))
    except InvalidSignature:
        return "signature does not verify"
    return ""


def load(path: Path | str, public_key: Ed25519PublicKey | None) -> Registry:
    """Read and verify a registry file. A missing file is an empty registry; a syntax or
    field error raises ConfigError (file, key, line) so the caller keeps the previous one."""
    path = Path(path)
    if not path.exists():
        return Registry(path)
    data = read_toml(path)
    extra = sorted(set(data) - {"medium"})
    if extra:
        raise ConfigError(path, extra[0], "unknown key (a registry holds [[medium]] tables only)")
    raws = data.get("medium", [])
    if not isinstance(raws, list):
        raise ConfigError(path, "medium", "expected [[medium]] tables")
    reg = Registry(path)
    seen: set[str] = set()
    for i, raw in enumerate(raws):
        rec = _parse_record(raw, path, i)
        if rec.id in seen:
            raise ConfigError(path, f"medium[{i}].id", f"duplicate medium id {rec.id!r}")
        seen.add(rec.id)
        rec.problem = verify(rec, public_key, raw)
        (reg.forged if rec.problem else reg.records).append(rec)
    return reg


def sign_record(body: dict[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    body = {k: body.get(k, "") for k in SIGNED_FIELDS}
    if not body["issued"]:
        body["issued"] = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    body["signature"] = base64.b64encode(key.sign(signed_bytes(body))).decode("ascii")
    return body


def add_record(path: Path | str, record: dict[str, Any]) -> None:
    """Append (or replace, by id) a signed record; the file is rewritten atomically."""
    path = Path(path)
    data = read_toml(path) if path.exists() else {}
    media = [m for m in data.get("medium", []) if m.get("id") != record["id"]]
    media.append(record)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, b"# baomi media registry: records signed by the security administrator (docs/media.md)\n"
                 + tomli_w.dumps({"medium": media}).encode("utf-8"), mode=0o644)


def merge_central(local: Registry, doc: dict[str, Any] | None, today: _dt.date) -> Registry:
    """The registry in force: media.toml's records merged with the central registry document
    (docs/media.md "集中登记"). Central decides every id it names:

    - a central registration replaces the media.toml record with the same id (verified or not);
    - a central revocation removes the media.toml record with that id: not registered;
    - a central registration past its `expires` day registers nothing (nor does media.toml's
      record of that id);
    - media.toml records of ids the central document does not name stay as they are.

    Central records come first, so when a central and a local record bind the same medium
    the central one is the medium's registration."""
    if not doc:
        return local
    named = {m["id"] for m in doc.get("media", [])} | {r["id"] for r in doc.get("revoked", [])}
    central = [Record(id=m["id"], owner=m["owner"], level=Level.parse(m["level"]), hosts=list(m["hosts"]),
                      binding={k: m.get(k, "") for k in BINDING_KEYS}, fs_label=m.get("fs_label", ""),
                      issued=m.get("issued", ""), source="central", expires=m.get("expires", ""))
               for m in doc.get("media", []) if not media_rules.expired(m, today)]
    return Registry(path=local.path, records=central + [r for r in local.records if r.id not in named],
                    forged=[r for r in local.forged if r.id not in named], errors=list(local.errors),
                    central_version=int(doc.get("version") or 0),
                    revoked=sorted(r["id"] for r in doc.get("revoked", [])),
                    overridden=sorted(r.id for r in local.records + local.forged if r.id in named))


def generate_keypair(private_path: Path | str, public_path: Path | str) -> None:
    write_keypair(Ed25519PrivateKey.generate(), private_path, public_path)
