"""The central media registry document (common/media_registry.py) and how the agent merges
it with media.toml (agent/media/registry.merge_central): pure, no I/O."""
from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from baomi.agent.media import registry as reg_mod
from baomi.common import central
from baomi.common import media_registry as rules
from baomi.common.levels import Level

KEY = Ed25519PrivateKey.generate()
TODAY = dt.date(2026, 12, 1)


def _entry(rid: str, fs_uuid: str, level: str = "secret", **kw) -> dict:
    return rules.entry(id=rid, owner="张三", level=level, hosts=kw.pop("hosts", ["classified"]), fs_uuid=fs_uuid,
                       issued="2026-12-01T10:00:00Z", registered_by="sec1", **kw)


def _doc(version: int, media=(), revoked=()) -> dict:
    return rules.document(version, media, revoked, "2026-12-01T10:00:00Z")


def _local(*records: reg_mod.Record, forged: tuple = ()) -> reg_mod.Registry:
    return reg_mod.Registry(records=list(records), forged=list(forged))


def _rec(rid: str, fs_uuid: str, level: str = "confidential") -> reg_mod.Record:
    return reg_mod.Record(id=rid, owner="local", level=Level.parse(level), hosts=["classified", "unclassified"],
                          binding={"vendor_id": "", "product_id": "", "serial": "", "fs_uuid": fs_uuid})


def test_entry_checks_its_fields() -> None:
    e = _entry("M-0001", "1234-ABCD", vendor_id=" 0781 ", level="机密", expires="2027-01-31")
    assert e["level"] == "secret" and e["vendor_id"] == "0781" and e["hosts"] == ["classified"]
    for bad in ({"id": "a b"}, {"id": "register"}, {"level": "huge"}, {"hosts": []}, {"hosts": ["cloud"]},
                {"fs_uuid": " "}, {"expires": "next year"}):
        fields = dict(id="M-1", owner="", level="secret", hosts=["classified"], fs_uuid="X", issued="")
        fields.update(bad)
        with pytest.raises(ValueError):
            rules.entry(**fields)


def test_signed_document_verifies_and_any_change_is_forged() -> None:
    doc = _doc(1, [_entry("M-0001", "1234-ABCD")])
    env = central.sign(doc, KEY)
    assert rules.verify(env, KEY.public_key()) == doc
    altered = {"document": {**doc, "media": [{**doc["media"][0], "level": "public"}]}, "signature": env["signature"]}
    with pytest.raises(central.Forged):
        rules.verify(altered, KEY.public_key())
    with pytest.raises(central.Forged):   # signed by another key
        rules.verify(central.sign(doc, Ed25519PrivateKey.generate()), KEY.public_key())
    with pytest.raises(central.Forged):   # a policy document is not a registry, even well signed
        rules.verify(central.sign(central.document(1, {}, "2026-12-01T10:00:00Z"), KEY), KEY.public_key())
    bad_entry = {**doc, "media": [{**doc["media"][0], "level": "huge"}]}
    with pytest.raises(central.Forged):
        rules.verify(central.sign(bad_entry, KEY), KEY.public_key())


def test_judge_applies_newer_refuses_older_and_forged() -> None:
    v1, v2 = central.sign(_doc(1), KEY), central.sign(_doc(2, [_entry("M-0001", "U1")]), KEY)
    assert rules.judge(v2, KEY.public_key(), 1, v1["signature"]).outcome == "apply"
    assert rules.judge(v1, KEY.public_key(), 2, v2["signature"]).outcome == "rollback"
    assert rules.judge(v2, KEY.public_key(), 2, v2["signature"]).outcome == "same"
    other_v2 = central.sign(_doc(2), KEY)
    assert rules.judge(other_v2, KEY.public_key(), 2, v2["signature"]).outcome == "rollback"
    forged = {"document": v2["document"], "signature": v1["signature"]}
    j = rules.judge(forged, KEY.public_key(), 1)
    assert j.outcome == "forged" and j.version == 2
    # the policy's judge is unchanged by the media registry's check
    assert central.judge(v2, KEY.public_key(), 0).outcome == "forged"


def test_registration_revocation_and_ids() -> None:
    d = _doc(1, [_entry("M-0001", "U1")])
    media, revoked = rules.with_revocation(d, "M-0001", "2026-12-01T11:00:00Z", "sec1", "lost")
    d2 = _doc(2, media, revoked)
    assert d2["media"] == [] and d2["revoked"][0]["id"] == "M-0001"
    assert rules.changes(d, d2) == {"registered": [], "changed": [], "revoked": ["M-0001"]}
    media, revoked = rules.with_registration(d2, _entry("M-0001", "U1", level="top_secret"))
    d3 = _doc(3, media, revoked)
    assert d3["revoked"] == [] and d3["media"][0]["level"] == "top_secret"
    assert rules.changes(d2, d3)["registered"] == ["M-0001"]
    with pytest.raises(LookupError):
        rules.with_revocation(d2, "M-0001", "", "sec1")
    with pytest.raises(ValueError):
        _doc(4, [_entry("M-0001", "U1"), _entry("M-0001", "U2")])
    assert rules.next_id([]) == "M-0001"
    assert rules.next_id(["M-0001", "M-0041", "SITE-9", "M-x"]) == "M-0042"


def test_binds_names_fs_uuid_and_only_the_usb_fields_it_names() -> None:
    medium = {"vendor_id": "0781", "product_id": "5567", "serial": "AB", "fs_uuid": "1234-abcd"}
    assert rules.binds({"fs_uuid": "1234-ABCD"}, medium)
    assert rules.binds({"fs_uuid": "1234-ABCD", "serial": "ab", "vendor_id": "0781"}, medium)
    assert not rules.binds({"fs_uuid": "1234-ABCD", "serial": "CD"}, medium)
    assert not rules.binds({"fs_uuid": "", "serial": "AB"}, medium)


def test_expiry_is_the_last_valid_day() -> None:
    e = _entry("M-1", "U", expires="2026-12-01")
    assert not rules.expired(e, TODAY) and rules.expired(e, TODAY + dt.timedelta(days=1))
    assert not rules.expired(_entry("M-1", "U"), dt.date(2099, 1, 1))


def test_merge_central_overrides_revokes_and_keeps_the_rest() -> None:
    local = _local(_rec("M-0001", "U1"), _rec("M-0002", "U2"), _rec("LOCAL-9", "U9"),
                   forged=(_rec("M-0003", "U3"),))
    doc = _doc(5, [_entry("M-0001", "U1-NEW", level="top_secret"), _entry("M-0004", "U9", expires="2026-11-30"),
                   _entry("M-0005", "U5")],
               [{"id": "M-0002", "revoked_at": "", "revoked_by": "sec1", "reason": ""},
                {"id": "M-0003", "revoked_at": "", "revoked_by": "sec1", "reason": ""}])
    merged = reg_mod.merge_central(local, doc, TODAY)
    by_id = {r.id: r for r in merged.records}
    # central replaces media.toml's record of the same id
    assert by_id["M-0001"].source == "central" and by_id["M-0001"].level == Level.TOP_SECRET
    assert by_id["M-0001"].binding["fs_uuid"] == "U1-NEW"
    # revoked: not registered even though media.toml has it; a forged local record of a revoked id goes too
    assert "M-0002" not in by_id and merged.forged == []
    # expired central registrations register nothing
    assert "M-0004" not in by_id
    # ids central does not name stay
    assert by_id["LOCAL-9"].source == "local" and "M-0005" in by_id
    assert merged.central_version == 5 and merged.revoked == ["M-0002", "M-0003"]
    assert merged.overridden == ["M-0001", "M-0002", "M-0003"]
    # the medium U9 is bound by the local record (the central one expired)
    good, _ = merged.lookup({"fs_uuid": "U9"})
    assert good is not None and good.id == "LOCAL-9"
    # central records come first: a medium both bind is the central registration's
    both = reg_mod.merge_central(_local(_rec("LOCAL-1", "UX")), _doc(1, [_entry("M-0009", "UX")]), TODAY)
    assert both.lookup({"fs_uuid": "UX"})[0].id == "M-0009"
    assert reg_mod.merge_central(local, None, TODAY) is local
