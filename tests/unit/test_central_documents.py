"""Signed central policy documents: canonical signing and verification, the version
rules agents apply, precedence over agent.toml, and the collector's sealed key."""
from __future__ import annotations

import copy
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from baomi.common import central as c
from baomi.common.events import canonical

KEY = Ed25519PrivateKey.generate()
PUB = KEY.public_key()


def env(version: int, cells: dict | None = None, key: Ed25519PrivateKey = KEY) -> dict:
    return c.sign(c.document(version, cells or {"unclassified.personal.internal": "block"},
                             "2026-12-01T10:00:00Z"), key)


def test_signature_covers_the_canonical_json_of_the_document() -> None:
    e = env(3)
    assert e["document"] == {"type": "policy", "version": 3, "issued_at": "2026-12-01T10:00:00Z", "scope": "all",
                             "cells": {"unclassified.personal.internal": "block"}}
    assert c.verify(e, PUB) == e["document"]
    # key order and white space do not matter: the same canonical bytes
    reordered = {"signature": e["signature"], "document": json.loads(json.dumps(e["document"], indent=2))}
    assert c.verify(reordered, PUB)
    assert c.signed_bytes(e["document"]) == canonical(dict(reversed(list(e["document"].items()))))


@pytest.mark.parametrize("tamper", [
    lambda e: e["document"]["cells"].update({"unclassified.personal.internal": "allow"}),
    lambda e: e["document"].update(version=99),
    lambda e: e["document"].update(issued_at="2030-01-01T00:00:00Z"),
    lambda e: e.update(signature=""),
    lambda e: e.update(signature="not base64!"),
    lambda e: e.pop("signature"),
    lambda e: e.update(document="x"),
])
def test_any_change_is_forged(tamper) -> None:
    e = copy.deepcopy(env(2))
    tamper(e)
    with pytest.raises(c.Forged):
        c.verify(e, PUB)
    assert c.judge(e, PUB, 1).outcome == "forged"


def test_signed_by_another_key_is_forged() -> None:
    other = Ed25519PrivateKey.generate()
    j = c.judge(env(5, key=other), PUB, 1)
    assert j.outcome == "forged" and "does not verify" in j.reason and j.version == 5


def test_signed_but_invalid_cells_are_refused() -> None:
    doc = {"type": "policy", "version": 2, "issued_at": "x", "scope": "all",
           "cells": {"unclassified.personal": "block"}}   # a device cell takes allow/read_only/deny
    assert c.judge(c.sign(doc, KEY), PUB, 0).outcome == "forged"
    with pytest.raises(ValueError):
        c.document(2, {"no.such.cell": "block"}, "x")
    with pytest.raises(ValueError):
        c.document(0, {}, "x")


def test_version_rules() -> None:
    e3 = env(3)
    assert c.judge(e3, PUB, 0).outcome == "apply"
    assert c.judge(e3, PUB, 2).outcome == "apply"
    assert c.judge(e3, PUB, 3, e3["signature"]).outcome == "same"
    j = c.judge(env(2), PUB, 3, e3["signature"])
    assert j.outcome == "rollback" and j.version == 2 and "older" in j.reason
    # a different, validly signed document claiming the running version is not taken either
    other3 = env(3, {"unclassified.personal.internal": "audit"})
    assert c.judge(other3, PUB, 3, e3["signature"]).outcome == "rollback"


def test_central_overrides_local_cells_except_locked() -> None:
    local = {"unclassified.personal.internal": "block", "classified.personal": "read_only"}
    central = {"unclassified.personal.internal": "notify", "classified.personal": "deny",
               "unclassified.personal.public": "block"}
    eff = c.effective_actions(local, central, locked=["classified.personal"])
    assert eff.actions == {"unclassified.personal.internal": "notify", "classified.personal": "read_only",
                           "unclassified.personal.public": "block"}
    assert eff.kept_local == ["classified.personal"]
    assert c.effective_actions(local, None).actions == local
    assert c.changes({"a": "x", "b": "y"}, {"a": "x", "b": "z", "c": "w"}) == {
        "b": {"before": "y", "after": "z"}, "c": {"before": None, "after": "w"}}


def test_sealed_key_opens_only_with_its_passphrase() -> None:
    from baomi.service import central as svc
    key = Ed25519PrivateKey.generate()
    sealed = svc.seal(key, "Right-Passphrase-2026", n=2 ** 12)
    blob = json.loads(sealed)
    assert blob["kdf"] == "scrypt" and "Right-Passphrase" not in sealed
    assert svc.unseal(sealed, "Right-Passphrase-2026").public_key().public_bytes_raw() == \
        key.public_key().public_bytes_raw()
    with pytest.raises(svc.WrongPassphrase):
        svc.unseal(sealed, "wrong-passphrase-2026")
    # a sealed blob whose public key was swapped (to pass off another key) does not open either
    blob["public_key"] = json.loads(svc.seal(Ed25519PrivateKey.generate(), "x", n=2 ** 12))["public_key"]
    with pytest.raises(svc.WrongPassphrase):
        svc.unseal(json.dumps(blob), "Right-Passphrase-2026")
