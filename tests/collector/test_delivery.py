"""Delivery end to end with real agent and collector processes: nothing lost
and nothing stored twice across outages and SIGKILLs of either side, on SQLite
and PostgreSQL; `baomi-agent run` delivering its own events and heartbeats."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from baomi.agent import config as agent_config
from baomi.agent import events as ev
from baomi.agent.context import open_context
from baomi.agent.uploader import UploaderComponent
from tests.support.collector import REPO, Collector

pytestmark = pytest.mark.timeout(600)

DRIVER = r"""
import sys, time
from baomi.agent import config as C
from baomi.agent.context import open_context
from baomi.agent.uploader import UploaderComponent
cfg = C.load(sys.argv[1]); n = int(sys.argv[2])
ctx = open_context(cfg)
comp = UploaderComponent(ctx); comp.start()
print("up", flush=True)
for i in range(n):
    ctx.record("file.copied", details={"i": i})
    time.sleep(0.003)
while ctx.spool.depth():
    time.sleep(0.05)
print("delivered", flush=True)
time.sleep(3600)
"""


def agent_conf(folder: Path, url: str, token: str, **extra: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    conf = folder / "agent.toml"
    lines = [f'[paths]\nstate_dir = "{folder / "state"}"', "[collector]", f'url = "{url}"', f'token = "{token}"',
             "batch_size = 50", "backoff_min_s = 0.05", "backoff_max_s = 0.5", "heartbeat_s = 3600", "timeout_s = 5"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in extra.items()]
    conf.write_text("\n".join(lines) + "\n")
    return conf


def start_driver(conf: Path, n: int) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-c", DRIVER, str(conf), str(n)], cwd=REPO, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    assert p.stdout.readline().strip() == "up"
    return p


def wait_delivered(p: subprocess.Popen, timeout: float = 120) -> None:
    import select
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        r, _, _ = select.select([p.stdout], [], [], 1)
        if r and p.stdout.readline().strip() == "delivered":
            return
    raise AssertionError("the agent did not deliver its spool")


def kill(p: subprocess.Popen) -> None:
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()


def spool_events(conf: Path) -> list[dict]:
    ctx = open_context(agent_config.load(conf))
    try:
        return list(ctx.spool.iter_events())
    finally:
        ctx.spool.close()


def assert_all_delivered_once(c: Collector, conf: Path) -> list[dict]:
    local = spool_events(conf)
    agent_id = local[0]["agent_id"]
    stored = c.stored(agent_id)
    seqs = [e["seq"] for e in stored]
    assert len(seqs) == len(set(seqs)), "an event was stored twice"
    assert sorted(seqs) == [e["seq"] for e in local], "an event was lost"
    bodies = [{k: v for k, v in e.items() if k != "stored_at"} for e in sorted(stored, key=lambda e: e["seq"])]
    assert ev.verify_chain(bodies) is None
    assert [e for e in c.stored() if e["kind"].startswith("chain.")] == []
    return stored


def test_collector_down_then_back(tmp_path: Path, database: str | None) -> None:
    c = Collector(tmp_path / "c", database)
    token = c.token()
    conf = agent_conf(tmp_path / "a", c.url, token)
    p = start_driver(conf, 2000)  # records while nobody listens
    try:
        time.sleep(2)
        assert len(spool_events(conf)) > 100
        with c:
            wait_delivered(p)
            stored = assert_all_delivered_once(c, conf)
            assert len([e for e in stored if e["kind"] == "file.copied"]) == 2000
    finally:
        kill(p)


def test_sigkill_of_agent_and_collector_loses_nothing(tmp_path: Path, database: str | None) -> None:
    """25 rounds, each killing the agent and the collector at random moments (50 kills)."""
    rnd = random.Random(20261122)
    c = Collector(tmp_path / "c", database)
    conf = agent_conf(tmp_path / "a", c.url, c.token())
    c.start()
    try:
        for _ in range(25):
            p = start_driver(conf, 60)
            time.sleep(rnd.uniform(0.05, 0.4))
            if rnd.random() < 0.5:
                kill(p)
                c.kill()
            else:
                c.kill()
                time.sleep(rnd.uniform(0.0, 0.2))
                kill(p)
            c.start()
        p = start_driver(conf, 0)
        wait_delivered(p)
        kill(p)
        stored = assert_all_delivered_once(c, conf)
        assert len(stored) > 25 * 5
    finally:
        c.stop()


def test_baomi_agent_run_delivers_start_and_heartbeats(tmp_path: Path, artifacts: Path) -> None:
    with Collector(tmp_path / "c") as c:
        conf = agent_conf(tmp_path / "a", c.url, c.token(), heartbeat_s=1)
        conf.write_text(conf.read_text() + '[screenlock]\nenabled = false\n[scan]\nrule_dirs = []\n')
        log = tmp_path / "agent.log"
        with open(log, "wb") as logf:
            p = subprocess.Popen([sys.executable, "-m", "baomi.agent.cli", "run", "--config", str(conf)], cwd=REPO,
                                 stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 60
            stored: list[dict] = []
            while time.monotonic() < deadline:
                stored = [e for e in c.stored() if e["agent_id"] != "collector"]
                if {"agent.started", "agent.heartbeat"} <= {e["kind"] for e in stored}:
                    break
                time.sleep(0.5)
            kinds = {e["kind"] for e in stored}
            assert {"agent.started", "agent.heartbeat", "agent.enrolled"} <= kinds, log.read_text()[-3000:]
            row = json.loads(c.cli("agents", "--json").stdout.splitlines()[0])
            assert row["online"] and row["version"] and row["spool_depth"] is not None
        finally:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                kill(p)
            (artifacts / "delivery-agent.log").write_bytes(log.read_bytes())
