"""Scoped central policy (docs/policy.md "Scopes"): each agent resolves its own cells from one
signed document — its group's over its host class's over all hosts' over agent.toml and the
built-in default — and documents published before scopes existed still verify and apply."""
from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from baomi.common import central as rules

KEY = Ed25519PrivateKey.generate()
PUB = KEY.public_key()
T = "2026-12-01T11:00:00Z"
ALL = {"unclassified.personal.public": "audit", "uninspectable.personal.unsupported": "audit",
       "classified.personal": "deny"}
SCOPES = {"class:classified": {"uninspectable.personal.unsupported": "block"},
          "class:unclassified": {"unclassified.personal.public": "notify"},
          "group:财务部": {"unclassified.personal.public": "block", "uninspectable.personal.unsupported": "notify"}}
GROUPS = {"财务部": ["agent-fin"], "研发部": ["agent-dev"]}


def scoped_doc(version: int = 2) -> dict:
    return rules.document(version, ALL, T, scopes=SCOPES, groups=GROUPS)


def test_group_over_class_over_all() -> None:
    doc = rules.verify(rules.sign(scoped_doc(), KEY), PUB)
    fin = rules.resolve(doc, "unclassified", "agent-fin")
    assert fin.group == "财务部"
    assert fin.scopes == ["all", "class:unclassified", "group:财务部"]
    assert fin.cells["unclassified.personal.public"] == "block"          # group beats class
    assert fin.cells["uninspectable.personal.unsupported"] == "notify"   # group beats all
    assert fin.cells["classified.personal"] == "deny"                    # only all sets it
    assert fin.scoped == {"unclassified.personal.public": "group:财务部",
                          "uninspectable.personal.unsupported": "group:财务部"}

    other = rules.resolve(doc, "unclassified", "agent-other")   # in no group
    assert other.group is None and other.scopes == ["all", "class:unclassified"]
    assert other.cells["unclassified.personal.public"] == "notify"       # class beats all
    assert other.cells["uninspectable.personal.unsupported"] == "audit"

    dev = rules.resolve(doc, "classified", "agent-dev")   # a group without cells of its own
    assert dev.group == "研发部" and dev.scopes == ["all", "class:classified"]
    assert dev.cells["uninspectable.personal.unsupported"] == "block"
    assert dev.scoped == {"uninspectable.personal.unsupported": "class:classified"}


def test_locked_cells_and_the_default_below_every_scope() -> None:
    fin = rules.resolve(scoped_doc(), "unclassified", "agent-fin")
    local = {"unclassified.personal.public": "allow", "unclassified.personal.internal": "block"}
    eff = rules.effective_actions(local, fin.cells, locked=["unclassified.personal.public"])
    assert eff.actions["unclassified.personal.public"] == "allow"        # locked: the group's block is not applied
    assert eff.kept_local == ["unclassified.personal.public"]
    assert eff.actions["unclassified.personal.internal"] == "block"      # no scope names it: agent.toml
    assert "unclassified.personal.top_secret" not in eff.actions         # nor here: the built-in default


def test_old_format_documents_still_verify_and_apply() -> None:
    old = {"type": "policy", "version": 1, "issued_at": T, "scope": "all", "cells": dict(ALL)}
    doc = rules.verify(rules.sign(old, KEY), PUB)
    r = rules.resolve(doc, "unclassified", "agent-fin")
    assert r.cells == ALL and r.scopes == ["all"] and r.group is None and r.scoped == {}
    assert rules.judge(rules.sign(old, KEY), PUB, 0).outcome == "apply"
    # and without scopes or groups the collector still writes exactly that format
    assert set(rules.document(1, ALL, T)) == set(rules.FIELDS)
    assert set(rules.document(1, ALL, T, scopes={"class:classified": {}}, groups={})) == set(rules.FIELDS)


def test_membership_is_signed() -> None:
    env = rules.sign(scoped_doc(), KEY)
    env["document"]["groups"]["财务部"].append("agent-other")   # moving a host without a signature
    j = rules.judge(env, PUB, 0)
    assert j.outcome == "forged"


@pytest.mark.parametrize("scopes, groups, why", [
    ({"host:pc-1": {"classified.personal": "deny"}}, {}, "a scope is"),
    ({"class:secret": {"classified.personal": "deny"}}, {}, "class scope"),
    ({"class:classified": {"classified.personal": "block"}}, {}, "device action"),
    ({"class:classified": {"unclassified.personal.public": "block"}}, {}, "not a cell of this host class"),
    ({}, {"财务部": ["a"], "研发部": ["a"]}, "in two groups"),
    ({}, {" 财务部": ["a"]}, "group name"),
])
def test_bad_scopes_are_refused_when_made_and_when_verified(scopes: dict, groups: dict, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        rules.document(2, ALL, T, scopes=scopes, groups=groups)
    forged = {"type": "policy", "version": 2, "issued_at": T, "scope": "all", "cells": dict(ALL),
              "scopes": scopes, "groups": groups}
    j = rules.judge(rules.sign(forged, KEY), PUB, 0)
    assert j.outcome == "forged" and why in j.reason
    half = {"type": "policy", "version": 2, "issued_at": T, "scope": "all", "cells": dict(ALL), "scopes": {}}
    assert rules.judge(rules.sign(half, KEY), PUB, 0).outcome == "forged"   # scopes without groups


def test_inherited_tells_where_a_cell_comes_from() -> None:
    cells, scopes = ALL, SCOPES
    assert rules.inherited(cells, scopes, "class:classified", "classified.personal") == \
        [(None, "deny", "all")]
    # a class-specific cell in a group: from that class's scope, or all
    assert rules.inherited(cells, scopes, "group:研发部", "unclassified.personal.public") == \
        [(None, "notify", "class:unclassified")]
    # a shared cell whose class scopes differ: one entry per host class
    assert rules.inherited(cells, scopes, "group:研发部", "uninspectable.personal.unsupported") == \
        [("classified", "block", "class:classified"), ("unclassified", "audit", "all")]
    assert rules.cell_applies("unclassified.personal.public", "class:classified") is False
    assert rules.cell_applies("uninspectable.personal.unsupported", "class:classified") is True
