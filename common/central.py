"""Signed central documents (docs/policy.md "Central policy documents"): pure, no I/O.

A policy document is the canonical JSON of

    {"type": "policy", "version": 3, "issued_at": "2026-12-01T11:00:00Z",
     "scope": "all", "cells": {"unclassified.personal.internal": "block", ...}}

signed with the security administrator's Ed25519 key. On the wire and on disk it
travels as an envelope {"document": {...}, "signature": "base64"}. Agents verify the
signature over canonical(document) against the public key installed with them and
accept only a version >= the one they run (`judge`).

Which cells an agent then applies is `effective_actions`: the central document's cells
override agent.toml's `[policy] actions`, except the cells agent.toml locks with
`[policy] locked`, which keep their local value (or the built-in default).
"""
from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from baomi.common.events import canonical
from baomi.common.policy import validate_overrides

DOC_TYPE = "policy"
SCOPE_ALL = "all"
FIELDS = ("type", "version", "issued_at", "scope", "cells")


class Forged(ValueError):
    """The envelope is malformed or its signature does not verify."""


def document(version: int, cells: Mapping[str, str], issued_at: str, scope: str = SCOPE_ALL) -> dict[str, Any]:
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"version must be a positive integer, got {version!r}")
    problem = validate_overrides(cells)
    if problem:
        raise ValueError(problem)
    return {"type": DOC_TYPE, "version": version, "issued_at": issued_at, "scope": scope,
            "cells": dict(sorted(cells.items()))}


def signed_bytes(doc: Mapping[str, Any]) -> bytes:
    return canonical(dict(doc))


def sign(doc: Mapping[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    return {"document": dict(doc), "signature": base64.b64encode(key.sign(signed_bytes(doc))).decode("ascii")}


def verified(envelope: Any, key: Ed25519PublicKey) -> dict[str, Any]:
    """The document of any signed envelope (policy, approval) whose signature verifies
    under `key`; Forged naming why otherwise. Its fields are the caller's to check."""
    if not isinstance(envelope, dict) or not isinstance(envelope.get("document"), dict):
        raise Forged("not a signed document envelope")
    doc, sig = envelope["document"], envelope.get("signature")
    if not isinstance(sig, str) or not sig:
        raise Forged("missing signature")
    try:
        raw = base64.b64decode(sig, validate=True)
    except (binascii.Error, ValueError):
        raise Forged("signature is not base64") from None
    try:
        key.verify(raw, signed_bytes(doc))
    except InvalidSignature:
        raise Forged("signature does not verify against the security administrator's public key") from None
    return doc


def verify(envelope: Any, key: Ed25519PublicKey) -> dict[str, Any]:
    """The policy document if the envelope's signature verifies under `key` and its fields
    are sound; Forged naming why otherwise."""
    doc = verified(envelope, key)
    # signed, yet it must still be a policy document an agent can apply
    if set(doc) != set(FIELDS) or doc.get("type") != DOC_TYPE:
        raise Forged(f"signed, but not a policy document (fields {sorted(doc)})")
    v = doc.get("version")
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise Forged("signed, but its version is not a positive integer")
    cells = doc.get("cells")
    if not isinstance(cells, dict) or any(not isinstance(a, str) for a in cells.values()):
        raise Forged("signed, but its cells are not a table of actions")
    problem = validate_overrides(cells)
    if problem:
        raise Forged(f"signed, but a cell is not valid here: {problem}")
    return doc


@dataclass(frozen=True)
class Judgement:
    outcome: str                      # "apply" | "same" | "forged" | "rollback"
    reason: str = ""
    document: dict[str, Any] | None = None
    version: int | None = None        # the offered document's version, when readable


def judge(envelope: Any, key: Ed25519PublicKey, running: int, running_signature: str = "",
          check: Callable[[Any, Ed25519PublicKey], dict[str, Any]] | None = None) -> Judgement:
    """What an agent running version `running` does with an offered envelope:
    apply a verified newer one, keep running on the same one, refuse a forged one or
    an older one (and a different document claiming the version it runs). `check`
    verifies one document type (default: policy's `verify`; the rules document's is
    baomi.common.rulesdoc.verify); every versioned document is judged alike."""
    try:
        doc = (check or verify)(envelope, key)
    except Forged as exc:
        v = envelope.get("document", {}).get("version") if isinstance(envelope, dict) and isinstance(
            envelope.get("document"), dict) else None
        return Judgement("forged", str(exc), None, v if isinstance(v, int) else None)
    v = doc["version"]
    if v > running:
        return Judgement("apply", "", doc, v)
    if v == running and (not running_signature or envelope["signature"] == running_signature):
        return Judgement("same", "", doc, v)
    why = (f"version {v} is older than version {running} this agent runs" if v < running
           else f"another document claims version {v}, which this agent already runs")
    return Judgement("rollback", why, doc, v)


@dataclass
class Effective:
    actions: dict[str, str]
    kept_local: list[str] = field(default_factory=list)   # central cells not applied: locked here


def effective_actions(local: Mapping[str, str], central: Mapping[str, str] | None,
                      locked: Iterable[str] = ()) -> Effective:
    """Local `[policy] actions`, overridden by the central document's cells except the
    locked ones."""
    locked = set(locked)
    out = dict(local)
    kept = []
    for cell, action in (central or {}).items():
        if cell in locked:
            if out.get(cell) != action:
                kept.append(cell)
            continue
        out[cell] = action
    return Effective(out, sorted(kept))


def changes(before: Mapping[str, str], after: Mapping[str, str]) -> dict[str, dict[str, str | None]]:
    """cell -> {"before", "after"} for every cell that differs (the audit event's content)."""
    return {c: {"before": before.get(c), "after": after.get(c)}
            for c in sorted(set(before) | set(after)) if before.get(c) != after.get(c)}
