"""Blocking is crash-safe: interrupted after any step, recovery finishes it once.

The medium here is a plain folder (no root needed); the SIGKILL version of the
same test, against a real agent process and a loop device, is in
tests/integration/test_enforce_crash.py."""
from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from baomi.agent import quarantine as q
from baomi.agent.config import AgentConfig
from baomi.agent.context import open_context
from baomi.agent.enforce.block import CRASH_POINTS, Blocker
from baomi.agent.enforce.journal import Journal


class Crash(Exception):
    pass


def _setup(tmp_path: Path, max_bytes: int = 1 << 30):
    priv, pub = q.keygen(tmp_path / "keys")
    cfg = AgentConfig()
    cfg.paths.state_dir = tmp_path / "state"
    ctx = open_context(cfg)
    quar = q.Quarantine(tmp_path / "state" / "quarantine", q.load_public_key(pub), max_bytes)
    journal = Journal(tmp_path / "state" / "quarantine" / "journal")
    medium = tmp_path / "medium"
    medium.mkdir()
    return ctx, quar, journal, medium, priv


def _block(blocker: Blocker, medium: Path, name: str, data: bytes):
    path = medium / name
    path.write_bytes(data)
    with open(path, "rb") as src:
        return blocker.block(src=src, path=str(path), mountpoint=str(medium), medium_key="loop9",
                             sha256=hashlib.sha256(data).hexdigest(), size=len(data), level="secret",
                             fields={"medium": {"fs_uuid": "AB-CD"}, "file": {"path": name, "level": "secret"},
                                     "rule": "unclassified.personal.secret", "user": {"uid": 1000}})


def test_block_stores_removes_and_records(tmp_path: Path) -> None:
    ctx, quar, journal, medium, priv = _setup(tmp_path)
    data = "机密★1年 报告".encode() * 1000
    ev = _block(Blocker(ctx, quar, journal), medium, "a.txt", data)
    assert not (medium / "a.txt").exists()
    assert ev["kind"] == "file.blocked" and ev["severity"] == "high"
    assert ev["details"]["content_kept"] is True and ev["details"]["removed"] is True
    out = io.BytesIO()
    quar.decrypt(ev["details"]["quarantine_id"], q.load_private_key(priv), out)
    assert out.getvalue() == data
    assert list(journal.pending()) == []


def test_full_quarantine_still_removes_and_says_content_not_kept(tmp_path: Path) -> None:
    ctx, quar, journal, medium, _ = _setup(tmp_path, max_bytes=10_000)
    ev = _block(Blocker(ctx, quar, journal), medium, "big.txt", b"x" * 50_000)
    assert not (medium / "big.txt").exists()
    assert ev["details"]["content_kept"] is False
    assert ev["details"]["not_kept_reason"] == "quarantine full"
    assert "quarantine_id" not in ev["details"]
    assert list(quar.entries()) == []


@pytest.mark.parametrize("stage", CRASH_POINTS)
def test_crash_at_any_step_is_resumed_exactly_once(tmp_path: Path, stage: str) -> None:
    ctx, quar, journal, medium, priv = _setup(tmp_path)
    data = b"\x00secret" * 300_000  # > 2 chunks, so "storing" interrupts a half-written entry
    dying = Blocker(ctx, quar, journal)

    def hook(s: str) -> None:
        if s == stage:
            raise Crash(s)
    dying._hook = hook
    with pytest.raises(Crash):
        _block(dying, medium, "doc.bin", data)

    # the agent restarts: a new Blocker over the same state, the medium mounted again
    fresh = Blocker(ctx, quar, journal)
    fresh.recover(lambda rec: str(medium))
    fresh.recover(lambda rec: str(medium))  # a second pass (another mount event) changes nothing

    assert not (medium / "doc.bin").exists()
    entries = list(quar.entries())
    assert len(entries) == 1
    out = io.BytesIO()
    quar.decrypt(entries[0].id, q.load_private_key(priv), out)
    assert out.getvalue() == data
    blocked = list(ctx.spool.iter_events(0, "file.blocked"))
    assert len(blocked) == 1, [e["details"] for e in blocked]
    assert blocked[0]["details"]["quarantine_id"] == entries[0].id
    assert list(journal.pending()) == []
    assert not list((tmp_path / "state" / "quarantine").glob(".*.tmp"))


def test_recovery_waits_for_the_medium(tmp_path: Path) -> None:
    ctx, quar, journal, medium, _ = _setup(tmp_path)
    dying = Blocker(ctx, quar, journal)
    dying._hook = lambda s: (_ for _ in ()).throw(Crash(s)) if s == "intent" else None
    with pytest.raises(Crash):
        _block(dying, medium, "w.txt", b"marked")
    fresh = Blocker(ctx, quar, journal)
    assert fresh.recover(lambda rec: None) == []       # medium not mounted: nothing decided
    assert (medium / "w.txt").exists() and len(list(journal.pending())) == 1
    assert len(fresh.recover(lambda rec: str(medium))) == 1
    assert not (medium / "w.txt").exists()


def test_file_changed_before_recovery_is_not_removed(tmp_path: Path) -> None:
    ctx, quar, journal, medium, _ = _setup(tmp_path)
    dying = Blocker(ctx, quar, journal)
    dying._hook = lambda s: (_ for _ in ()).throw(Crash(s)) if s == "intent" else None
    with pytest.raises(Crash):
        _block(dying, medium, "w.txt", b"marked")
    (medium / "w.txt").write_bytes(b"something else now")  # its own write will be scanned on its own
    Blocker(ctx, quar, journal).recover(lambda rec: str(medium))
    assert (medium / "w.txt").read_bytes() == b"something else now"
    assert list(journal.pending()) == []
