"""The encrypted quarantine: round trips, wrong keys, tampering, size accounting, CLI."""
from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from baomi.agent import quarantine as q
from baomi.agent.cli import main


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    return q.keygen(tmp_path / "keys")


def _store(root: Path, pub: Path, data: bytes, entry_id: str = "e1") -> q.Quarantine:
    qq = q.Quarantine(root, q.load_public_key(pub), 1 << 30)
    qq.store(entry_id, io.BytesIO(data), {"original_path": "/media/u/机密.docx", "size": len(data),
                                           "sha256": __import__("hashlib").sha256(data).hexdigest(),
                                           "level": "secret", "medium": {"fs_uuid": "1234-ABCD"}})
    return qq


@pytest.mark.parametrize("size", [0, 1, q.CHUNK - 1, q.CHUNK, q.CHUNK * 2 + 17])
def test_round_trip_any_size(tmp_path: Path, keys, size: int) -> None:
    priv, pub = keys
    data = os.urandom(size)
    qq = _store(tmp_path / "q", pub, data)
    out = io.BytesIO()
    header = qq.decrypt("e1", q.load_private_key(priv), out)
    assert out.getvalue() == data
    assert header["level"] == "secret"
    # the plaintext is nowhere in the stored entry
    if size >= 64:
        assert data[:64] not in qq.entry_path("e1").read_bytes()


def test_private_key_file_is_owner_only_and_never_overwritten(tmp_path: Path, keys) -> None:
    priv, _ = keys
    assert (priv.stat().st_mode & 0o777) == 0o600
    with pytest.raises(q.QuarantineError, match="refusing to overwrite"):
        q.keygen(priv.parent)


def test_other_key_cannot_open(tmp_path: Path, keys) -> None:
    _, pub = keys
    other_priv, _ = q.keygen(tmp_path / "other")
    qq = _store(tmp_path / "q", pub, b"secret bytes")
    with pytest.raises(q.QuarantineError, match="different public key"):
        qq.decrypt("e1", q.load_private_key(other_priv), io.BytesIO())


def test_tampered_or_truncated_entry_is_refused(tmp_path: Path, keys) -> None:
    priv, pub = keys
    data = os.urandom(q.CHUNK + 100)
    qq = _store(tmp_path / "q", pub, data)
    path = qq.entry_path("e1")
    raw = bytearray(path.read_bytes())
    raw[-50] ^= 1
    path.write_bytes(bytes(raw))
    with pytest.raises(q.QuarantineError, match="authentication"):
        qq.decrypt("e1", q.load_private_key(priv), io.BytesIO())
    # drop the final chunk: must not pass as a shorter file
    qq2 = _store(tmp_path / "q2", pub, data)
    p2 = qq2.entry_path("e1")
    blob = p2.read_bytes()
    p2.write_bytes(blob[: len(blob) - (100 + 16 + 4)])
    with pytest.raises(q.QuarantineError):
        qq2.decrypt("e1", q.load_private_key(priv), io.BytesIO())


def test_public_key_errors_name_the_file(tmp_path: Path, keys) -> None:
    priv, _ = keys
    with pytest.raises(q.QuarantineError, match="not an X25519 public key|cannot read"):
        q.load_public_key(priv)
    with pytest.raises(q.QuarantineError, match="missing.pem"):
        q.load_public_key(tmp_path / "missing.pem")


def test_room_accounts_for_stored_entries(tmp_path: Path, keys) -> None:
    _, pub = keys
    qq = q.Quarantine(tmp_path / "q", q.load_public_key(pub), 100_000)
    assert qq.has_room(50_000)
    qq.store("a", io.BytesIO(os.urandom(60_000)), {"size": 60_000})
    assert not qq.has_room(50_000)
    assert qq.has_room(10_000)


def test_partial_entries_are_invisible_and_discarded(tmp_path: Path, keys) -> None:
    _, pub = keys
    qq = _store(tmp_path / "q", pub, b"x")
    (tmp_path / "q" / ".e2.tmp").write_bytes(b"half written")
    assert [e.id for e in qq.entries()] == ["e1"]
    qq.discard_partial()
    assert not (tmp_path / "q" / ".e2.tmp").exists()


def test_cli_keygen_list_restore(tmp_path: Path, capsys) -> None:
    assert main(["quarantine", "keygen", "--out", str(tmp_path / "k")]) == 0
    priv, pub = tmp_path / "k" / "quarantine.key", tmp_path / "k" / "quarantine.pub"
    state = tmp_path / "state"
    data = "机密★1年\n内容".encode("gb18030")
    _store(state / "quarantine", pub, data, "20260101T000000-abc")
    conf = tmp_path / "agent.toml"
    conf.write_text(f'[paths]\nstate_dir = "{state}"\n[quarantine]\npublic_key = "{pub}"\n')
    capsys.readouterr()
    assert main(["quarantine", "list", "--config", str(conf), "--json"]) == 0
    rows = [json.loads(l) for l in capsys.readouterr().out.splitlines()]
    assert [r["id"] for r in rows] == ["20260101T000000-abc"]
    assert rows[0]["original_path"] == "/media/u/机密.docx" and rows[0]["size"] == len(data)
    assert rows[0]["level"] == "secret" and len(rows[0]["sha256"]) == 64
    out = tmp_path / "restored"
    assert main(["quarantine", "restore", "20260101T000000-abc", "--config", str(conf),
                 "--key", str(priv), "--to", str(out)]) == 0
    assert (out / "机密.docx").read_bytes() == data
    capsys.readouterr()
    assert main(["events", "--config", str(conf), "--json"]) == 0
    restored = [e for e in map(json.loads, capsys.readouterr().out.splitlines()) if e["kind"] == "quarantine.restored"]
    assert len(restored) == 1 and restored[0]["details"]["entry"] == "20260101T000000-abc"
    assert restored[0]["file"]["sha256"] == rows[0]["sha256"] and restored[0]["user"]["uid"] == os.getuid()
    # a second restore does not overwrite, a missing id is named
    assert main(["quarantine", "restore", "20260101T000000-abc", "--config", str(conf),
                 "--key", str(priv), "--to", str(out)]) == 1
    assert main(["quarantine", "restore", "nope", "--config", str(conf),
                 "--key", str(priv), "--to", str(out)]) == 1
    assert "no quarantine entry 'nope'" in capsys.readouterr().err
