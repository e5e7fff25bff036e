"""Fault tests with real processes: agents (driver.py / `baomi-agent run`) and collectors
(`baomi-collector serve`) on SQLite and on a real PostgreSQL."""
from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from baomi.common import events as ev
from baomi.agent.agent_key import load_or_create
from baomi.agent.spool import open_spool
from tests.delivery.conftest import REPO, Driver, agent_config
from tests.support.collector import Collector
from tests.support.skips import need_root

pytestmark = pytest.mark.timeout(300)


def local_events(cfg: Path) -> list[dict[str, Any]]:
    state = cfg.parent / "state"
    ident = load_or_create(state)
    spool = open_spool(state, ident.agent_id)
    try:
        return list(spool.iter_events())
    finally:
        spool.close()


def agent_id_of(cfg: Path) -> str:
    return load_or_create(cfg.parent / "state").agent_id


def assert_delivered_once(collector: Collector, cfg: Path) -> list[dict[str, Any]]:
    """Everything in the agent's spool is stored exactly once, in one verifying chain."""
    agent_id = agent_id_of(cfg)
    stored = [e for e in collector.stored() if e.get("agent_id") == agent_id]
    seqs = [e["seq"] for e in stored]
    assert len(seqs) == len(set(seqs)), "an event was stored twice"
    local = local_events(cfg)
    assert {e["seq"] for e in local} <= set(seqs), "an event never arrived"
    by_seq = {e["seq"]: e for e in stored}
    for e in local:
        assert by_seq[e["seq"]]["hash"] == e["hash"]
    ordered = sorted(stored, key=lambda e: e["seq"])
    assert seqs and sorted(seqs) == list(range(1, max(seqs) + 1)), "a hole in the stored sequence"
    bodies = [{k: e[k] for k in ev.FIELDS} for e in ordered]
    assert ev.verify_chain(bodies) is None
    assert not collector.stored(kind="chain.*"), "the collector saw a chain break or gap"
    return ordered


def wait_for(pred, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_collector_down_then_back(collector: Collector, tmp_path: Path, drivers: list[Driver]) -> None:
    token = collector.token()
    collector.kill()  # down before the agent ever reaches it
    cfg = agent_config(tmp_path / "agent", collector.url, token)
    drivers.append(d := Driver(cfg, "--count", "3000", "--drain"))
    wait_for(lambda: "recorded 3000" in d.log.read_text(), 120, "3000 events recorded")
    assert d.proc.poll() is None  # still waiting: nothing acknowledged while the collector is down
    collector.start()
    assert d.wait(120) == 0, d.log.read_text()[-2000:]
    stored = assert_delivered_once(collector, cfg)
    assert sum(1 for e in stored if e["kind"] == "file.blocked") == 3000


def test_sigkill_agent_and_collector(collector: Collector, tmp_path: Path, drivers: list[Driver]) -> None:
    """25 kill cycles per database (50 across the suite): SIGKILL the agent or the collector at a
    random moment while events are recorded and sent; afterwards all arrive once, chain intact."""
    rng = random.Random(5)
    token = collector.token()
    cfg = agent_config(tmp_path / "agent", collector.url, token)
    kills = {"agent": 0, "collector": 0}
    agent = Driver(cfg, "--rate", "400")
    drivers.append(agent)
    for cycle in range(25):
        time.sleep(rng.uniform(0.05, 0.6))
        if rng.random() < 0.5:
            agent.kill()
            kills["agent"] += 1
            agent = Driver(cfg, "--rate", "400")
            drivers.append(agent)
        else:
            collector.kill()
            kills["collector"] += 1
            time.sleep(rng.uniform(0.0, 0.3))
            collector.start()
    agent.kill()
    assert kills["agent"] and kills["collector"]
    drivers.append(final := Driver(cfg, "--count", "1", "--drain"))
    assert final.wait(120) == 0, final.log.read_text()[-2000:]
    stored = assert_delivered_once(collector, cfg)
    assert len(stored) > 100


@pytest.mark.parametrize("batch_size", [
    500,  # the whole backlog in one batch: gap records arrive with the hole they explain
    20,   # small batches: a gap record may travel ahead of the events before it
])
def test_spool_cap_gap_accepted_by_collector(collector: Collector, tmp_path: Path, drivers: list[Driver],
                                             batch_size: int) -> None:
    token = collector.token()
    collector.kill()
    cfg = agent_config(tmp_path / "agent", collector.url, token,
                       extra="[spool]\nmax_bytes = 300000\n")
    # small batches: the gap records are sent ahead of the events between a hole and them
    cfg.write_text(cfg.read_text().replace("batch_size = 200", f"batch_size = {batch_size}"))
    # collector down: the spool overflows its cap, dropping routine records, keeping security ones
    drivers.append(d := Driver(cfg, "--count", "700", "--mix", "--drain"))
    wait_for(lambda: "recorded 700" in d.log.read_text(), 120, "700 events recorded")
    collector.start()
    assert d.wait(120) == 0, d.log.read_text()[-2000:]
    agent_id = agent_id_of(cfg)
    stored = [e for e in collector.stored() if e.get("agent_id") == agent_id]
    gaps = [e for e in stored if e["kind"] == "agent.gap"]
    assert gaps and all(g["details"]["reason"] == "spool_full" for g in gaps)
    blocked = {e["details"]["i"] for e in stored if e["kind"] == "file.blocked"}
    assert blocked == set(range(7, 701, 7))  # every security event kept
    announced = set()
    for g in gaps:
        announced |= set(range(g["details"]["first_seq"], g["details"]["last_seq"] + 1))
    seqs = {e["seq"] for e in stored}
    assert set(range(1, max(seqs) + 1)) - seqs == announced
    assert not collector.stored(kind="chain.*"), "the collector reported a chain break or gap"


@pytest.mark.root
def test_spool_filesystem_full(collector: Collector, tmp_path: Path, drivers: list[Driver]) -> None:
    from tests.delivery.conftest import small_ext4
    from tests.delivery.test_spool_limits import fill
    need_root()
    token = collector.token()
    collector.kill()
    with small_ext4(tmp_path / "loop") as mnt:
        folder = tmp_path / "agent"
        folder.mkdir()
        cfg = folder / "agent.toml"
        agent_config(folder, collector.url, token)
        cfg.write_text(cfg.read_text().replace(f'state_dir = "{folder / "state"}"', f'state_dir = "{mnt}"'))
        drivers.append(d := Driver(cfg, "--rate", "200", "--mix"))
        time.sleep(1.0)
        fill(mnt / "filler")
        time.sleep(2.0)  # events keep being recorded on a full disk
        assert d.proc.poll() is None, d.log.read_text()[-2000:]
        (mnt / "filler").unlink()
        time.sleep(1.5)
        d.kill()
        collector.start()
        # (--mix: its one event is routine, so it does not count among the security events below)
        drivers.append(final := Driver(cfg, "--count", "1", "--mix", "--drain"))
        assert final.wait(120) == 0, final.log.read_text()[-2000:]
        agent_id = load_or_create(mnt).agent_id
        stored = [e for e in collector.stored() if e.get("agent_id") == agent_id]
        gaps = [e for e in stored if e["kind"] == "agent.gap"]
        assert any(g["details"]["reason"] == "disk_full" for g in gaps)
        seqs = {e["seq"] for e in stored}
        assert len(seqs) == len(stored)
        announced = set()
        for g in gaps:
            announced |= set(range(g["details"]["first_seq"], g["details"]["last_seq"] + 1))
        assert set(range(1, max(seqs) + 1)) - seqs <= announced
        # every security event recorded on the full disk was kept and arrived
        blocked = {e["details"]["i"] for e in stored if e["kind"] == "file.blocked"}
        last_i = max(e["details"]["i"] for e in stored if e["kind"].startswith("file."))
        assert blocked == set(range(7, last_i + 1, 7))
        assert not collector.stored(kind="chain.*")
        assert len(blocked) >= 10


def test_real_agent_run_delivers_started_and_heartbeats(collector: Collector, tmp_path: Path) -> None:
    token = collector.token()
    cfg = agent_config(tmp_path / "agent", collector.url, token)
    cfg.write_text(cfg.read_text().replace("heartbeat_s = 3600", "heartbeat_s = 0.5"))
    log = tmp_path / "agent.log"
    with open(log, "wb") as logf:
        proc = subprocess.Popen([str(REPO / ".venv/bin/baomi-agent"), "run", "--config", str(cfg)],
                                stdout=logf, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True)
    agent_id = agent_id_of(cfg) if (cfg.parent / "state" / "agent.key").exists() else None
    try:
        def arrived() -> bool:
            kinds = [e["kind"] for e in collector.stored()]
            return "agent.started" in kinds and kinds.count("agent.heartbeat") >= 2
        wait_for(arrived, 60, "agent.started and heartbeats at the collector")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    agent_id = agent_id_of(cfg)
    beats = [e for e in collector.stored(kind="agent.heartbeat") if e["agent_id"] == agent_id]
    d = beats[0]["details"]
    assert d["version"] and d["policy_version"] and isinstance(d["spool_depth"], int)
    agents = collector.cli("agents").stdout
    assert agent_id in agents and "online" in agents
