"""Registry records: signing, verification, parsing errors; identity binding; level history; the decision."""
from __future__ import annotations

import stat

import pytest

from baomi.common.levels import Level
from baomi.agent.media import registry as reg
from baomi.agent.decide.arrival import decide_arrival
from baomi.agent.media.recognise import recognise
from baomi.agent.media.history import LevelHistory
from baomi.agent.media.identity import matches, medium_key
from baomi.common.tomlconf import ConfigError

STICK = {"vendor_id": "0781", "product_id": "5567", "serial": "4C53", "fs_uuid": "3A5F-1C2D"}


@pytest.fixture
def keys(tmp_path):
    priv, pub = tmp_path / "sec.pem", tmp_path / "sec.pub.pem"
    reg.generate_keypair(priv, pub)
    return reg.load_private_key(priv), reg.load_public_key(pub), priv


def write(tmp_path, *records):
    path = tmp_path / "media.toml"
    for r in records:
        reg.add_record(path, r)
    return path


def signed(key, **kw):
    body = {"id": "M-1", "owner": "张三", "level": "secret", "hosts": ["classified"], **STICK}
    body.update(kw)
    return reg.sign_record(body, key)


def test_keygen_private_key_is_0600(keys):
    _, _, priv = keys
    assert stat.S_IMODE(priv.stat().st_mode) == 0o600


def test_signed_record_verifies_and_binds(tmp_path, keys):
    key, pub, _ = keys
    r = reg.load(write(tmp_path, signed(key)), pub)
    assert [x.id for x in r.records] == ["M-1"] and r.forged == []
    rec, forged = r.lookup({**STICK, "devnode": "/dev/sdb1"})
    assert rec.level == Level.SECRET and rec.owner == "张三" and forged is None


def test_tampered_record_is_forged(tmp_path, keys):
    key, pub, _ = keys
    rec = signed(key)
    rec["level"] = "internal"
    r = reg.load(write(tmp_path, rec), pub)
    assert r.records == [] and r.forged[0].problem == "signature does not verify"
    assert r.lookup(STICK) == (None, r.forged[0])


def test_record_signed_by_another_key_is_forged(tmp_path, keys):
    _, pub, _ = keys
    other = tmp_path / "o"
    other.mkdir()
    reg.generate_keypair(other / "k", other / "p")
    r = reg.load(write(tmp_path, signed(reg.load_private_key(other / "k"))), pub)
    assert r.forged and not r.records


def test_missing_signature_is_forged(tmp_path, keys):
    key, pub, _ = keys
    rec = signed(key)
    del rec["signature"]
    r = reg.load(write(tmp_path, rec), pub)
    assert r.forged[0].problem == "missing signature"


def test_no_public_key_configured_means_nothing_is_registered(tmp_path, keys):
    key, _, _ = keys
    r = reg.load(write(tmp_path, signed(key)), None)
    assert not r.records and "registry_public_key" in r.forged[0].problem


def test_syntax_error_names_file_and_line(tmp_path, keys):
    path = tmp_path / "media.toml"
    path.write_text('[[medium]]\nid = "M-1"\nlevel = secret\n')
    with pytest.raises(ConfigError) as err:
        reg.load(path, keys[1])
    assert err.value.file == str(path) and err.value.line == 3
    assert f"{path}:3" in str(err.value)


@pytest.mark.parametrize("text,key", [
    ('[[medium]]\nid = "M-1"\nlevel = "secret"\n', "medium[0].fs_uuid"),
    ('[[medium]]\nid = "M-1"\nlevel = "ultra"\nfs_uuid = "x"\n', "medium[0].level"),
    ('[[medium]]\nid = "M-1"\nlevel = "secret"\nfs_uuid = "x"\nhosts = ["dmz"]\n', "medium[0].hosts"),
    ('[[medium]]\nid = "M-1"\nlevel = "secret"\nfs_uuid = "x"\ncolour = "red"\n', "medium[0].colour"),
    ('[[medium]]\nid = "M-1"\nlevel = "secret"\nfs_uuid = "x"\n[[medium]]\nid = "M-1"\nlevel = "secret"\n'
     'fs_uuid = "y"\n', "medium[1].id"),
    ('owner = "x"\n', "owner"),
])
def test_field_errors_name_the_key(tmp_path, keys, text, key):
    path = tmp_path / "media.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        reg.load(path, keys[1])
    assert err.value.key == key


def test_missing_registry_is_empty(tmp_path, keys):
    assert reg.load(tmp_path / "absent.toml", keys[1]).records == []


def test_register_replaces_by_id(tmp_path, keys):
    key, pub, _ = keys
    path = write(tmp_path, signed(key), signed(key, level="top_secret"), signed(key, id="M-2", fs_uuid="B"))
    r = reg.load(path, pub)
    assert {x.id: x.level for x in r.records} == {"M-1": Level.TOP_SECRET, "M-2": Level.SECRET}


def test_same_serial_different_fs_uuid_are_different_media():
    a = {**STICK}
    b = {**STICK, "fs_uuid": "0000-1111"}
    assert medium_key(a) != medium_key(b)
    assert matches(STICK, a) and not matches(STICK, b)
    assert not matches({**STICK, "serial": "OTHER"}, a)
    assert matches({**STICK, "serial": "", "vendor_id": "", "product_id": ""}, {**a, "serial": "zzz"})
    assert not matches({**STICK, "fs_uuid": ""}, {**a, "fs_uuid": ""})   # a record must bind a filesystem


def test_level_history_only_rises(tmp_path):
    h = LevelHistory(tmp_path)
    assert h.get("M-1") is None
    assert h.raise_to("M-1", "confidential") == Level.CONFIDENTIAL
    assert h.raise_to("M-1", Level.INTERNAL) == Level.CONFIDENTIAL
    assert h.raise_to("M-1", "top_secret") == Level.TOP_SECRET
    assert LevelHistory(tmp_path).get("M-1") == Level.TOP_SECRET


def classify(identity, registry, history, host_class, overrides):
    """Recognise the medium, then decide its gate, as the media component does."""
    c = recognise(identity, registry, history)
    return c, decide_arrival(host_class, c.medium_class, c.ceiling, c.allowed_hosts, False, False,
                             overrides).decision


def test_recognise_uses_history_ceiling_and_policy(tmp_path, keys):
    key, pub, _ = keys
    r = reg.load(write(tmp_path, signed(key, level="internal", hosts=["classified", "unclassified"])), pub)
    c, d = classify(dict(STICK), r, {}, "unclassified", {})
    assert d.action == "allow" and c.identity["class"] == "registered" and c.ceiling == Level.INTERNAL
    # it once held a secret file: now a classified medium, so cross-use on an unclassified host
    c, d = classify(dict(STICK), r, {"M-1": Level.SECRET}, "unclassified", {})
    assert d.action == "deny" and d.rule == "unclassified.registered.classified"
    assert c.identity["level"] == "secret"
    c, d = classify({**STICK, "fs_uuid": "other"}, r, {}, "classified", {})
    assert (d.action, c.identity["class"]) == ("deny", "personal")
    c, d = classify({**STICK, "fs_uuid": "other"}, r, {}, "classified", {"classified.personal": "read_only"})
    assert d.action == "read_only"


def test_host_class_not_allowed(tmp_path, keys):
    key, pub, _ = keys
    r = reg.load(write(tmp_path, signed(key, level="public", hosts=["classified"])), pub)
    c, d = classify(dict(STICK), r, {}, "unclassified", {})
    assert d.rule == "registered.host_class_not_allowed" and d.action == "deny"
