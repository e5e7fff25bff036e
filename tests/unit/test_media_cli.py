"""`baomi-agent media keygen|register|list`: arguments and bad input (no devices needed)."""
from __future__ import annotations

import json
import stat

import pytest

from baomi.agent.cli import main
from baomi.agent.media import registry as reg


@pytest.fixture
def setup(tmp_path):
    priv, pub = tmp_path / "sec.pem", tmp_path / "sec.pub.pem"
    assert main(["media", "keygen", "--private", str(priv), "--public", str(pub)]) == 0
    cfg = tmp_path / "agent.toml"
    cfg.write_text(f'[paths]\nstate_dir = "{tmp_path / "state"}"\n'
                   f'[media]\nregistry = "{tmp_path / "media.toml"}"\nregistry_public_key = "{pub}"\n')
    return tmp_path, priv, pub, cfg


def test_keygen_makes_a_private_key_only_root_reads_and_refuses_to_overwrite(setup, capsys):
    tmp, priv, pub, _ = setup
    assert stat.S_IMODE(priv.stat().st_mode) == 0o600
    assert b"PUBLIC KEY" in pub.read_bytes()
    assert main(["media", "keygen", "--private", str(priv), "--public", str(pub)]) == 1
    assert "refusing to overwrite" in capsys.readouterr().err


def test_register_with_explicit_identity_writes_a_verifiable_record(setup, capsys):
    tmp, priv, pub, cfg = setup
    rc = main(["media", "register", "--config", str(cfg), "--key", str(priv), "--id", "M-7", "--owner", "李四",
               "--level", "机密", "--hosts", "classified", "--vendor-id", "0781", "--product-id", "5567",
               "--serial", "S1", "--fs-uuid", "AAAA-BBBB"])
    assert rc == 0
    body = json.loads(capsys.readouterr().out.splitlines()[0])
    assert body["level"] == "secret" and body["hosts"] == ["classified"]
    r = reg.load(tmp / "media.toml", reg.load_public_key(pub))
    assert [x.id for x in r.records] == ["M-7"] and r.records[0].binding["serial"] == "S1"


@pytest.mark.parametrize("args,message", [
    (["--level", "ultra", "--fs-uuid", "X"], "--level"),
    (["--level", "secret", "--hosts", "dmz", "--fs-uuid", "X"], "--hosts"),
    (["--level", "secret"], "no filesystem UUID"),
])
def test_register_bad_input(setup, capsys, args, message):
    tmp, priv, _, cfg = setup
    rc = main(["media", "register", "--config", str(cfg), "--key", str(priv), "--id", "M-8", "--owner", "x", *args])
    assert rc == 2 and message in capsys.readouterr().err
    assert not (tmp / "media.toml").exists()


def test_register_with_a_wrong_key_file_names_it(setup, capsys):
    tmp, _, pub, cfg = setup
    rc = main(["media", "register", "--config", str(cfg), "--key", str(pub), "--id", "M-9", "--owner", "x",
               "--level", "secret", "--fs-uuid", "X"])
    assert rc == 2 and str(pub) in capsys.readouterr().err


def test_list_with_a_broken_registry_is_a_clear_error(setup, capsys):
    tmp, _, _, cfg = setup
    (tmp / "media.toml").write_text("[[medium]\n")
    assert main(["media", "list", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert f"{tmp / 'media.toml'}:1" in err
