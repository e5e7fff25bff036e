"""The spool under pressure: its size cap and a full filesystem."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from baomi.common import events as ev
from baomi.agent.spool import Spool, _runs
from tests.support.skips import need_tools

pytestmark = pytest.mark.timeout(120)

PAD = "x" * 1500  # makes each event ~2 KB so a small cap is reached quickly


def chain_ok(spool: Spool) -> None:
    """Stored events verify one by one; links may only break right after an announced gap."""
    rows = list(spool.iter_events())
    dropped: set[int] = set()
    for g in (e for e in rows if e["kind"] == "agent.gap"):
        dropped |= set(range(g["details"]["first_seq"], g["details"]["last_seq"] + 1))
    prev = None
    for e in rows:
        assert ev.event_hash(e) == e["hash"], e["seq"]
        if prev is not None and e["seq"] == prev["seq"] + 1:
            assert e["prev_hash"] == prev["hash"], e["seq"]
        elif prev is not None:
            assert set(range(prev["seq"] + 1, e["seq"])) <= dropped, (prev["seq"], e["seq"])
        prev = e


def fill(path: Path) -> None:
    """Fill the filesystem holding `path` to its last block."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for chunk in (1 << 20, 65536, 4096, 512, 1):
            try:
                while True:
                    os.write(fd, b"\0" * chunk)
            except OSError:
                pass
    finally:
        os.close(fd)


def test_runs() -> None:
    assert list(_runs([1, 2, 3, 7, 8, 10])) == [(1, 3), (7, 8), (10, 10)]
    assert list(_runs([])) == []


def test_cap_drops_telemetry_first_and_announces_gaps(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db", "a1", max_bytes=256 * 1024)
    security, heartbeats, routine = [], [], []
    for i in range(600):
        if i % 10 == 0:
            security.append(spool.record("file.blocked", severity="high", action="block",
                                         details={"i": i, "pad": PAD})["seq"])
        elif i % 2:
            heartbeats.append(spool.record("agent.heartbeat", details={"i": i, "pad": PAD})["seq"])
        else:
            routine.append(spool.record("file.copied", action="audit", details={"i": i, "pad": PAD})["seq"])
    kept = {e["seq"]: e for e in spool.iter_events()}
    gaps = [e for e in kept.values() if e["kind"] == "agent.gap"]
    # every security event is still there; some telemetry was dropped, heartbeats before routine copies
    assert all(s in kept for s in security)
    assert gaps and all(g["details"]["reason"] == "spool_full" for g in gaps)
    lost = [s for s in heartbeats + routine if s not in kept]
    kept_low = [s for s in heartbeats + routine if s in kept]
    assert lost and kept_low
    assert max(lost) < min(kept_low)  # oldest first
    assert len(gaps) * 2 < len(lost)  # one record per run between kept events, not one per event
    # the gaps announce exactly what is missing, no more, no less
    announced = set()
    for g in gaps:
        d = g["details"]
        assert d["count"] == d["last_seq"] - d["first_seq"] + 1
        announced |= set(range(d["first_seq"], d["last_seq"] + 1))
    top = max(kept)
    assert announced == set(range(1, top + 1)) - set(kept)
    assert spool.used_bytes() <= 256 * 1024
    chain_ok(spool)
    spool.close()


def test_cap_prefers_acked_rows(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db", "a1", max_bytes=256 * 1024)
    for i in range(100):
        spool.record("agent.heartbeat", details={"pad": PAD})
    spool.ack(100)
    for i in range(100):
        spool.record("agent.heartbeat", details={"pad": PAD})
    # the second hundred fit once acknowledged rows are pruned: nothing unsent was dropped
    assert not list(spool.iter_events(kind="agent.gap"))
    assert spool.depth() == 100
    assert min(e["seq"] for e in spool.iter_events()) > 1
    spool.close()


def test_only_security_events_grow_past_cap_with_one_warning(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db", "a1", max_bytes=128 * 1024)
    for i in range(200):
        spool.record("medium.denied", severity="high", action="deny", details={"i": i, "pad": PAD})
    kinds = [e["kind"] for e in spool.iter_events()]
    assert kinds.count("medium.denied") == 200
    assert kinds.count("agent.spool_over_cap") == 1
    assert "agent.gap" not in kinds
    chain_ok(spool)
    spool.close()


def test_meta_survives_reopen(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db", "a1")
    spool.set_meta("batch", "41")
    spool.record("agent.started")
    spool.close()
    again = Spool(tmp_path / "spool.db", "a1")
    assert again.get_meta("batch") == "41"
    assert again.record("agent.started")["seq"] == 2
    again.close()


@pytest.mark.root
def test_full_filesystem_holds_security_events_and_recovers(tmp_path: Path) -> None:
    from tests.delivery.conftest import small_ext4
    need_tools("mkfs.ext4")
    with small_ext4(tmp_path / "loop") as state:
        spool = Spool(state / "spool.db", "a1")
        for i in range(20):
            spool.record("file.copied", action="audit", details={"i": i})
        filler = state / "filler"
        fill(filler)
        held, lost = [], []
        for i in range(300):  # none of these raise into the caller
            held.append(spool.record("file.blocked", severity="high", action="block", details={"i": i, "pad": PAD}))
            lost.append(spool.record("file.copied", action="audit", details={"i": i, "pad": PAD}))
        assert spool.overflowing
        assert not spool.flush_overflow()
        filler.unlink()
        assert spool.flush_overflow()
        stored = {e["seq"]: e for e in spool.iter_events()}
        assert all(h["seq"] in stored and stored[h["seq"]]["hash"] == h["hash"] for h in held)
        gaps = [e for e in stored.values() if e["kind"] == "agent.gap"]
        assert gaps and {g["details"]["reason"] for g in gaps} == {"disk_full"}
        announced = set()
        for g in gaps:
            announced |= set(range(g["details"]["first_seq"], g["details"]["last_seq"] + 1))
        missing = {e["seq"] for e in lost} - set(stored)
        assert missing and missing <= announced
        chain_ok(spool)
        after = spool.record("agent.started")
        assert after["seq"] == max(stored) + 1 and not spool.overflowing
        spool.close()
