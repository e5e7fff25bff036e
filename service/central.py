"""Central policy on the collector: the security administrator's signing key, kept
only sealed under a passphrase, and the signed policy documents agents fetch.

Key custody (docs/security.md "Central documents"): the Ed25519 private key is made
in the collector process when the security administrator first sets a passphrase in
the console, and only its sealed form is stored — scrypt (n=2^16, r=8, p=1) derives a
256-bit key from the passphrase and a random salt, AES-256-GCM seals the raw private
key with the public key as associated data. The passphrase is never stored; it is
typed for each signing, the key is unsealed for that one signature and dropped.
Whoever holds the database (the system administrator, root on the collector host, a
backup) holds only the sealed blob and must guess the passphrase at scrypt's cost.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any, Mapping

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from baomi.common import central as doc_rules
from baomi.common import policy as agent_policy
from baomi.common.keys import public_raw

from . import db

SEAL_FORMAT = "baomi-sealed-ed25519/1"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 16, 8, 1
MIN_PASSPHRASE = 12


class WrongPassphrase(ValueError):
    pass


class NoSigningKey(LookupError):
    pass


def _kdf(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode("utf-8"))


def seal(key: Ed25519PrivateKey, passphrase: str, n: int = SCRYPT_N) -> str:
    salt, nonce = os.urandom(16), os.urandom(12)
    pub = public_raw(key.public_key())
    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                            serialization.NoEncryption())
    ct = AESGCM(_kdf(passphrase, salt, n, SCRYPT_R, SCRYPT_P)).encrypt(nonce, raw, pub)
    b64 = lambda b: base64.b64encode(b).decode("ascii")  # noqa: E731
    return json.dumps({"format": SEAL_FORMAT, "kdf": "scrypt", "n": n, "r": SCRYPT_R, "p": SCRYPT_P,
                       "salt": b64(salt), "nonce": b64(nonce), "public_key": b64(pub), "ciphertext": b64(ct)},
                      sort_keys=True)


def unseal(sealed: str, passphrase: str) -> Ed25519PrivateKey:
    blob = json.loads(sealed)
    if blob.get("format") != SEAL_FORMAT:
        raise ValueError(f"unknown sealed key format {blob.get('format')!r}")
    d = lambda k: base64.b64decode(blob[k])  # noqa: E731
    try:
        raw = AESGCM(_kdf(passphrase, d("salt"), int(blob["n"]), int(blob["r"]), int(blob["p"]))).decrypt(
            d("nonce"), d("ciphertext"), d("public_key"))
    except InvalidTag:
        raise WrongPassphrase("the passphrase does not unlock the signing key") from None
    key = Ed25519PrivateKey.from_private_bytes(raw)
    if public_raw(key.public_key()) != d("public_key"):
        raise ValueError("the sealed key does not match its public key")
    return key


def fingerprint(public_hex: str) -> str:
    """sha256 of the raw public key, first 16 bytes as hex pairs (what people compare)."""
    h = hashlib.sha256(bytes.fromhex(public_hex)).hexdigest()[:32]
    return ":".join(h[i:i + 4] for i in range(0, 32, 4))


def public_pem(public_hex: str) -> bytes:
    return Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex)).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass
class KeyInfo:
    id: int
    public_key: str        # hex
    fingerprint: str
    created_at: dt.datetime
    created_by: str


def current_key(conn: sa.Connection) -> KeyInfo | None:
    K = db.signing_keys
    row = conn.execute(sa.select(K).order_by(K.c.id.desc()).limit(1)).first()
    if row is None:
        return None
    return KeyInfo(row.id, row.public_key, fingerprint(row.public_key), row.created_at, row.created_by)


def create_key(engine: sa.Engine, passphrase: str, by: str, n: int = SCRYPT_N) -> KeyInfo:
    """A new signing key, sealed under `passphrase`. Refused when one exists (agents trust
    the installed public key; replacing it is a re-installation, not a console click)."""
    key = Ed25519PrivateKey.generate()
    pub = public_raw(key.public_key()).hex()
    with engine.begin() as conn:
        if current_key(conn) is not None:
            raise ValueError("a signing key exists already")
        conn.execute(db.signing_keys.insert().values(public_key=pub, sealed=seal(key, passphrase, n),
                                                     created_at=dt.datetime.now(dt.timezone.utc), created_by=by))
        info = current_key(conn)
    assert info is not None
    return info


def signing_key(conn: sa.Connection, passphrase: str) -> Ed25519PrivateKey:
    """The private key, unsealed for one signature (the caller drops it): NoSigningKey /
    WrongPassphrase otherwise."""
    info = current_key(conn)
    if info is None:
        raise NoSigningKey("no signing key yet")
    sealed = conn.execute(sa.select(db.signing_keys.c.sealed).where(db.signing_keys.c.id == info.id)).scalar_one()
    return unseal(sealed, passphrase)


def default_cells() -> dict[str, str]:
    return {**agent_policy.device_cells(), **agent_policy.file_cells(), **agent_policy.print_cells()}


@dataclass
class Published:
    version: int
    issued_at: dt.datetime
    published_by: str
    document: dict[str, Any]
    signature: str

    def envelope(self) -> dict[str, Any]:
        return {"document": self.document, "signature": self.signature}


def _row(row: Any) -> Published:
    return Published(int(row.version), row.issued_at, row.published_by, json.loads(row.document), row.signature)


def latest_of(conn: sa.Connection, table: sa.Table) -> Published | None:
    """The highest version of a table of signed documents (policy_documents,
    media_registry_documents: version, issued_at, published_by, document, signature)."""
    row = conn.execute(sa.select(table).order_by(table.c.version.desc()).limit(1)).first()
    return _row(row) if row is not None else None


def latest_version_of(conn: sa.Connection, table: sa.Table) -> int:
    return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(table.c.version), 0))).scalar_one())


def history_of(conn: sa.Connection, table: sa.Table, limit: int = 50) -> list[Published]:
    return [_row(r) for r in conn.execute(sa.select(table).order_by(table.c.version.desc()).limit(limit))]


def latest(conn: sa.Connection) -> Published | None:
    return latest_of(conn, db.policy_documents)


def latest_version(conn: sa.Connection) -> int:
    return latest_version_of(conn, db.policy_documents)


def history(conn: sa.Connection, limit: int = 50) -> list[Published]:
    return history_of(conn, db.policy_documents, limit)


def current_cells(conn: sa.Connection) -> dict[str, str]:
    """The cells for all hosts in the latest document (the built-in table before any); class and
    group scopes are `current_scopes`."""
    doc = latest(conn)
    cells = default_cells()
    if doc is not None and isinstance(doc.document.get("cells"), dict):
        cells.update(doc.document["cells"])
    return cells


INHERIT = "inherit"     # what the console's form posts for a cell a class or group scope leaves unset


def current_scopes(conn: sa.Connection) -> dict[str, dict[str, str]]:
    """The class and group scopes of the latest document (none before any, or in an old one)."""
    doc = latest(conn)
    scopes = (doc.document.get("scopes") if doc is not None else None) or {}
    return {k: dict(v) for k, v in scopes.items()}


def signed_groups(conn: sa.Connection) -> dict[str, list[str]]:
    """The group membership the latest document signed (what agents resolve their cells by)."""
    doc = latest(conn)
    return {k: list(v) for k, v in ((doc.document.get("groups") if doc is not None else None) or {}).items()}


# -- host groups: named and filled by the system administrator ------------------------

def groups(conn: sa.Connection) -> dict[str, list[str]]:
    """Every group the system administrator made -> its members' agent ids (sorted)."""
    G, M = db.host_groups, db.host_group_members
    out: dict[str, list[str]] = {r.name: [] for r in conn.execute(sa.select(G.c.name).order_by(G.c.name))}
    for r in conn.execute(sa.select(M.c.agent_id, M.c.group_name).order_by(M.c.agent_id)):
        out.setdefault(r.group_name, []).append(r.agent_id)
    return out


def group_of(conn: sa.Connection, agent_id: str) -> str | None:
    M = db.host_group_members
    return conn.execute(sa.select(M.c.group_name).where(M.c.agent_id == agent_id)).scalar_one_or_none()


def create_group(engine: sa.Engine, name: str, by: str) -> None:
    """ValueError for a bad or taken name."""
    problem = doc_rules.group_name_problem(name)
    if problem:
        raise ValueError(problem)
    with engine.begin() as conn:
        if conn.execute(sa.select(db.host_groups.c.name).where(db.host_groups.c.name == name)).first():
            raise ValueError(f"group {name} exists already")
        conn.execute(db.host_groups.insert().values(name=name, created_at=dt.datetime.now(dt.timezone.utc),
                                                    created_by=by))


def delete_group(engine: sa.Engine, name: str) -> list[str]:
    """Deletes a group; its hosts are in no group from then on. Returns them; LookupError
    for a group that does not exist."""
    G, M = db.host_groups, db.host_group_members
    with engine.begin() as conn:
        if not conn.execute(sa.select(G.c.name).where(G.c.name == name)).first():
            raise LookupError(name)
        members = list(conn.execute(sa.select(M.c.agent_id).where(M.c.group_name == name)).scalars())
        conn.execute(M.delete().where(M.c.group_name == name))
        conn.execute(G.delete().where(G.c.name == name))
    return sorted(members)


def assign(engine: sa.Engine, agent_id: str, group: str | None, by: str) -> str | None:
    """Puts an enrolled host in `group` (None: in no group); returns the group it was in.
    LookupError for an unknown host or group."""
    M = db.host_group_members
    with engine.begin() as conn:
        if not conn.execute(sa.select(db.agents.c.agent_id).where(db.agents.c.agent_id == agent_id)).first():
            raise LookupError(f"host {agent_id}")
        if group is not None and not conn.execute(
                sa.select(db.host_groups.c.name).where(db.host_groups.c.name == group)).first():
            raise LookupError(f"group {group}")
        before = group_of(conn, agent_id)
        if before != group:
            conn.execute(M.delete().where(M.c.agent_id == agent_id))
            if group is not None:
                conn.execute(M.insert().values(agent_id=agent_id, group_name=group, assigned_by=by,
                                               assigned_at=dt.datetime.now(dt.timezone.utc)))
    return before


def membership_changes(signed: Mapping[str, list[str]], current: Mapping[str, list[str]]) -> dict[str, dict]:
    """agent id -> {"before": group, "after": group} for every host whose group differs between
    the signed membership and the system administrator's current one."""
    def by_agent(g: Mapping[str, list[str]]) -> dict[str, str]:
        return {a: name for name, members in g.items() for a in members}
    b, a = by_agent(signed), by_agent(current)
    return {x: {"before": b.get(x), "after": a.get(x)} for x in sorted(set(b) | set(a)) if b.get(x) != a.get(x)}


@dataclass
class Publication:
    """What one publication changed beyond the edited scope's cells (the audit event's content)."""
    scope: str
    membership: dict[str, dict]          # hosts whose signed group changed with this version
    groups_added: list[str]
    groups_removed: list[str]
    scopes_dropped: list[str]            # scopes of groups that no longer exist


def publish(engine: sa.Engine, cells: Mapping[str, str], passphrase: str, by: str,
            scope: str = doc_rules.SCOPE_ALL) -> tuple[Published, dict, Publication]:
    """Sign the current policy with `scope`'s cells changed as the next version and store it;
    returns the document, the changes of that scope's cells against the previous version
    (None: the scope did not set the cell) and what else the version changed.

    Every scope is signed each time, with the system administrator's group membership as it is
    now: membership changes take effect with the next publication. In "all" a cell the form
    does not name keeps its current action; in a class or group scope too, and a cell posted
    as "inherit" is no longer set there. WrongPassphrase / NoSigningKey / ValueError (a bad
    cell or scope) / sqlalchemy IntegrityError (another publication took the version first)
    leave nothing stored."""
    known = set(default_cells())
    unknown = sorted(set(cells) - known)
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown policy cell")
    if scope != doc_rules.SCOPE_ALL:
        problem = doc_rules.scope_problem(scope)
        if problem:
            raise ValueError(problem)
    with engine.begin() as conn:
        key = signing_key(conn, passphrase)
        base = current_cells(conn)
        scopes = current_scopes(conn)
        signed = signed_groups(conn)
        members = groups(conn)
        if scope.startswith("group:") and scope[6:] not in members:
            raise ValueError(f"{scope}: no such group (the system administrator makes groups on the hosts page)")
        if scope == doc_rules.SCOPE_ALL:
            before = base
            full = {**base, **cells}   # a cell the form does not name keeps its current action
            after = full
        else:
            full = base
            before = dict(scopes.get(scope, {}))
            after = dict(before)
            for cell, action in cells.items():
                if not doc_rules.cell_applies(cell, scope):
                    if action in ("", INHERIT):
                        continue
                    raise ValueError(f"{cell}: not a cell of {scope}")
                if action in ("", INHERIT):
                    after.pop(cell, None)
                else:
                    after[cell] = action
            scopes[scope] = after
        dropped = sorted(k for k in scopes if k.startswith("group:") and k[6:] not in members and scopes[k])
        scopes = {k: v for k, v in scopes.items() if v and not (k.startswith("group:") and k[6:] not in members)}
        version = latest_version(conn) + 1
        now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        doc = doc_rules.document(version, full, now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                 scopes=scopes, groups=members)
        env = doc_rules.sign(doc, key)
        del key
        conn.execute(db.policy_documents.insert().values(
            version=version, scope=doc["scope"], issued_at=now, published_by=by,
            document=json.dumps(doc, ensure_ascii=False, sort_keys=True), signature=env["signature"]))
    extra = Publication(scope, membership_changes(signed, doc.get("groups", {})),
                        sorted(set(doc.get("groups", {})) - set(signed)),
                        sorted(set(signed) - set(doc.get("groups", {}))), dropped)
    return Published(version, now, by, doc, env["signature"]), doc_rules.changes(before, after), extra


def versions_running(conn: sa.Connection) -> list[dict[str, Any]]:
    """policy_version as the heartbeats report it -> how many hosts run it and when the last
    of them applied it, newest version first (the policy page's rollout table)."""
    A = db.agents
    rows = conn.execute(sa.select(A.c.policy_version, sa.func.count().label("hosts"),
                                  sa.func.min(A.c.policy_applied_at).label("first"),
                                  sa.func.max(A.c.policy_applied_at).label("last"))
                        .group_by(A.c.policy_version)).all()

    def order(v: str | None) -> tuple[int, int, str]:
        if v and v.startswith("central:") and v[8:].isdigit():
            return (0, -int(v[8:]), v)
        return (1, 0, v or "")
    return sorted(({"version": r.policy_version, "hosts": int(r.hosts), "first": r.first, "last": r.last}
                   for r in rows), key=lambda r: order(r["version"]))


def served(pub: Published) -> tuple[bytes, str]:
    """The bytes GET /api/v1/policy answers with, and their ETag (a hash of exactly them)."""
    body = json.dumps(pub.envelope(), ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
