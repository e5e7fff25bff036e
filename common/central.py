"""Signed central documents (docs/policy.md "Central policy documents"): pure, no I/O.

A policy document is the canonical JSON of

    {"type": "policy", "version": 3, "issued_at": "2026-12-01T11:00:00Z",
     "scope": "all", "cells": {"unclassified.personal.internal": "block", ...}}

signed with the security administrator's Ed25519 key. A document may also carry scoped
cells and the group membership they need (docs/policy.md "Scopes"):

    {..., "scopes": {"class:classified": {...}, "group:财务部": {...}},
     "groups": {"财务部": ["agent-id", ...]}}

and each agent resolves its own cells from it (`resolve`: group > host class > all).
A document without them (what was published before scopes existed) is valid as ever.
On the wire and on disk it
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
SCOPED_FIELDS = ("scopes", "groups")        # both or neither (a document from before scopes has neither)
HOST_CLASSES = ("classified", "unclassified")
MAX_GROUP_NAME = 64
MAX_AGENT_ID = 64


class Forged(ValueError):
    """The envelope is malformed or its signature does not verify."""


# -- scopes ---------------------------------------------------------------------------

def class_scope(host_class: str) -> str:
    return f"class:{host_class}"


def group_scope(group: str) -> str:
    return f"group:{group}"


def group_name_problem(name: Any) -> str | None:
    """None for a usable group name (what the system administrator types, e.g. 财务部)."""
    if not isinstance(name, str) or not name or name != name.strip():
        return "a group name is a non-empty text without leading or trailing spaces"
    if len(name) > MAX_GROUP_NAME:
        return f"a group name has at most {MAX_GROUP_NAME} characters"
    if any(not ch.isprintable() for ch in name):
        return "a group name has no control characters"
    return None


def scope_problem(key: Any) -> str | None:
    """None for a valid scope key: "class:classified", "class:unclassified", "group:<name>"."""
    if not isinstance(key, str):
        return "a scope is named by text"
    kind, _, name = key.partition(":")
    if kind == "class":
        return None if name in HOST_CLASSES else f"{key}: a class scope is class:classified or class:unclassified"
    if kind == "group":
        problem = group_name_problem(name)
        return f"{key}: {problem}" if problem else None
    return f"{key}: a scope is class:<host class> or group:<name>"


def cell_class(cell: str) -> str | None:
    """The host class a cell is decided on, by its id ("classified.personal" -> "classified");
    None for cells both classes use (uninspectable.*, registered.*)."""
    head = cell.split(".", 1)[0]
    return head if head in HOST_CLASSES else None


def cell_applies(cell: str, scope: str) -> bool:
    """Whether a cell can matter in a scope: a class scope holds only its class's cells and the
    shared ones (a classified host never decides an unclassified.* cell)."""
    kind, _, name = scope.partition(":")
    c = cell_class(cell)
    return kind != "class" or c is None or c == name


def scopes_problem(scopes: Any, groups: Any) -> str | None:
    """None when `scopes` (scope -> cells) and `groups` (name -> agent ids) are sound: valid
    scope keys and cells, valid group names, each agent in at most one group."""
    if not isinstance(scopes, dict):
        return "scopes is not a table of scopes"
    for key, cells in scopes.items():
        problem = scope_problem(key)
        if problem:
            return problem
        if not isinstance(cells, dict) or any(not isinstance(a, str) for a in cells.values()):
            return f"{key}: its cells are not a table of actions"
        problem = validate_overrides(cells)
        if problem:
            return f"{key}: {problem}"
        wrong = sorted(c for c in cells if not cell_applies(c, key))
        if wrong:
            return f"{key}: {wrong[0]} is not a cell of this host class"
    if not isinstance(groups, dict):
        return "groups is not a table of groups"
    seen: dict[str, str] = {}
    for name, members in groups.items():
        problem = group_name_problem(name)
        if problem:
            return f"{name!r}: {problem}"
        if not isinstance(members, list) or any(not isinstance(m, str) or not m or len(m) > MAX_AGENT_ID
                                                 for m in members):
            return f"group {name}: its members are not a list of agent ids"
        for m in members:
            if m in seen:
                return f"agent {m} is in two groups ({seen[m]}, {name})"
            seen[m] = name
    return None


def document(version: int, cells: Mapping[str, str], issued_at: str, scope: str = SCOPE_ALL,
             scopes: Mapping[str, Mapping[str, str]] | None = None,
             groups: Mapping[str, Iterable[str]] | None = None) -> dict[str, Any]:
    """The policy document to sign. Without scopes and groups it is the format agents have
    always read; with either, it carries both (empty scopes are left out)."""
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"version must be a positive integer, got {version!r}")
    problem = validate_overrides(cells)
    if problem:
        raise ValueError(problem)
    doc: dict[str, Any] = {"type": DOC_TYPE, "version": version, "issued_at": issued_at, "scope": scope,
                           "cells": dict(sorted(cells.items()))}
    sc = {k: dict(sorted(v.items())) for k, v in sorted((scopes or {}).items()) if v}
    gr = {k: sorted(set(v)) for k, v in sorted((groups or {}).items())}
    if sc or gr:
        problem = scopes_problem(sc, gr)
        if problem:
            raise ValueError(problem)
        doc["scopes"], doc["groups"] = sc, gr
    return doc


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
    if set(doc) not in (set(FIELDS), set(FIELDS) | set(SCOPED_FIELDS)) or doc.get("type") != DOC_TYPE:
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
    if "scopes" in doc:
        problem = scopes_problem(doc["scopes"], doc["groups"])
        if problem:
            raise Forged(f"signed, but its scopes are not valid: {problem}")
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
    an older one (and a different document claiming the version it runs). `check` verifies
    the document's type and fields (default: the policy's `verify`; the media registry and
    the rules document pass their own); every versioned document is judged alike."""
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


@dataclass
class Resolved:
    """The central cells one host runs, resolved from a document."""
    cells: dict[str, str]
    sources: dict[str, str]                 # cell -> the scope it came from ("all", "class:…", "group:…")
    scopes: list[str]                       # the document's scopes that apply to this host, least specific first
    group: str | None = None

    @property
    def scoped(self) -> dict[str, str]:
        """cell -> scope, for the cells a class or group scope decided."""
        return {c: s for c, s in sorted(self.sources.items()) if s != SCOPE_ALL}


def group_of(doc: Mapping[str, Any], agent_id: str | None) -> str | None:
    """The group the signed membership puts `agent_id` in, if any."""
    for name, members in (doc.get("groups") or {}).items():
        if agent_id is not None and agent_id in members:
            return name
    return None


def resolve(doc: Mapping[str, Any], host_class: str, agent_id: str | None) -> Resolved:
    """The cells a host of `host_class` with `agent_id` runs from a verified document: its
    group's cells over its host class's cells over the cells for all hosts (a cell no scope
    names is left to agent.toml and the built-in default, see effective_actions)."""
    scopes = doc.get("scopes") or {}
    group = group_of(doc, agent_id)
    layers = [SCOPE_ALL, class_scope(host_class)] + ([group_scope(group)] if group is not None else [])
    cells: dict[str, str] = {}
    sources: dict[str, str] = {}
    applied = []
    for layer in layers:
        table = doc.get("cells") if layer == SCOPE_ALL else scopes.get(layer)
        if layer == SCOPE_ALL or layer in scopes:
            applied.append(layer)
        for cell, action in (table or {}).items():
            cells[cell], sources[cell] = action, layer
    return Resolved(cells, sources, applied, group)


def inherited(cells: Mapping[str, str], scopes: Mapping[str, Mapping[str, str]], scope: str,
              cell: str) -> list[tuple[str | None, str | None, str]]:
    """What a cell is in `scope` when that scope does not set it: [(host class or None, action,
    the scope it comes from)]. One entry, except for a group and a cell both classes use whose
    class scopes differ (a group holds hosts of either class)."""
    def of_class(host_class: str) -> tuple[str | None, str]:
        k = class_scope(host_class)
        if cell in scopes.get(k, {}):
            return scopes[k][cell], k
        return cells.get(cell), SCOPE_ALL
    kind = scope.partition(":")[0]
    if kind == "class":
        return [(None, cells.get(cell), SCOPE_ALL)]
    if kind == "group":
        c = cell_class(cell)
        if c is not None:
            return [(None, *of_class(c))]
        per = [(hc, *of_class(hc)) for hc in HOST_CLASSES]
        if len({(a, src) for _, a, src in per}) == 1:
            return [(None, per[0][1], per[0][2])]
        return per
    return []


def changes(before: Mapping[str, str], after: Mapping[str, str]) -> dict[str, dict[str, str | None]]:
    """cell -> {"before", "after"} for every cell that differs (the audit event's content)."""
    return {c: {"before": before.get(c), "after": after.get(c)}
            for c in sorted(set(before) | set(after)) if before.get(c) != after.get(c)}
