"""Central rules on the collector (docs/rules.md "Central rules"): the site rule file
and the registered documents' fingerprints, signed with the security administrator's
passphrase-sealed key (service/central.py) as versioned rules documents agents fetch.

Every change — the rule file edited, a fingerprint added or removed — is the next
version of one document: the latest row is the whole current state. An uploaded
document is hashed here and dropped: only its sha256 (with the name and level the
security administrator gives it) is kept, in the signed document. An uploaded
`baomi-agent fingerprint export` file brings the document's text fingerprints
(made on a PC, where the extractors are) and is kept as the hashes it holds.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any, Callable

import sqlalchemy as sa

from baomi.common import central as doc_rules
from baomi.common import rulesdoc

from . import db
from .central import Published, history_of, latest_of, latest_version_of, signing_key

MAX_UPLOAD_BYTES = 50 * 1024 * 1024
EMPTY = {"rules": "", "fingerprints": []}


def latest(conn: sa.Connection) -> Published | None:
    return latest_of(conn, db.rules_documents)


def latest_version(conn: sa.Connection) -> int:
    return latest_version_of(conn, db.rules_documents)


def history(conn: sa.Connection, limit: int = 50) -> list[Published]:
    return history_of(conn, db.rules_documents, limit)


def current(conn: sa.Connection) -> dict[str, Any]:
    pub = latest(conn)
    return dict(pub.document) if pub is not None else dict(EMPTY)


def publish(engine: sa.Engine, change: Callable[[dict[str, Any]], dict[str, Any]], passphrase: str,
            by: str) -> tuple[Published, dict[str, Any]]:
    """Sign `change(current state)` ({"rules", "fingerprints"}) as the next version and
    store it; returns it and the changes against the previous one. RuleError (the line and
    the reason) / ValueError / WrongPassphrase / NoSigningKey / IntegrityError (another
    publication took the version) leave nothing stored."""
    with engine.begin() as conn:
        before = current(conn)
        after = change({"rules": before.get("rules", ""), "fingerprints": list(before.get("fingerprints", []))})
        version = latest_version(conn) + 1
        now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        doc = rulesdoc.document(version, after["rules"], after["fingerprints"], now.strftime("%Y-%m-%dT%H:%M:%SZ"))
        changed = rulesdoc.changes(before, doc)
        if not changed:
            raise ValueError("nothing changed")
        key = signing_key(conn, passphrase)
        env = doc_rules.sign(doc, key)
        del key
        conn.execute(db.rules_documents.insert().values(
            version=version, issued_at=now, published_by=by,
            document=json.dumps(doc, ensure_ascii=False, sort_keys=True), signature=env["signature"]))
    return Published(version, now, by, doc, env["signature"]), changed


def with_rules(text: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda state: {**state, "rules": text.replace("\r\n", "\n")}


def with_fingerprint(entry: dict[str, Any]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Add {name, level, sha256} (and, from an export file, chars and hashes)."""
    def change(state: dict[str, Any]) -> dict[str, Any]:
        if any(f["name"] == entry["name"] for f in state["fingerprints"]):
            raise ValueError(f"a document named {entry['name']!r} is registered already (remove it first)")
        return {**state, "fingerprints": [*state["fingerprints"], dict(entry)]}
    return change


def without_fingerprint(name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def change(state: dict[str, Any]) -> dict[str, Any]:
        kept = [f for f in state["fingerprints"] if f["name"] != name]
        if len(kept) == len(state["fingerprints"]):
            raise LookupError(name)
        return {**state, "fingerprints": kept}
    return change


class TooLarge(ValueError):
    pass


MAX_EXPORT_BYTES = 32 * 1024 * 1024   # a `baomi-agent fingerprint export` file is read whole


async def read_upload(upload: Any, limit: int = MAX_UPLOAD_BYTES) -> tuple[str, int, dict[str, Any] | None]:
    """sha256 and size of an uploaded file, read in pieces and never kept (TooLarge past
    `limit`), and the entry when the file is a `baomi-agent fingerprint export` (JSON:
    held only while it is read, to parse it)."""
    h, size = hashlib.sha256(), 0
    held: list[bytes] | None = None
    while True:
        piece = await upload.read(1024 * 1024)
        if not piece:
            break
        if size == 0:
            held = [] if piece.lstrip()[:1] == b"{" else None
        size += len(piece)
        if size > limit:
            raise TooLarge(f"the file is larger than {limit // (1024 * 1024)} MB")
        h.update(piece)
        if held is not None:
            held = held + [piece] if size <= MAX_EXPORT_BYTES else None
    await upload.close()
    entry = rulesdoc.parse_export(b"".join(held)) if held else None
    return h.hexdigest(), size, entry


