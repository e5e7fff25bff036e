"""The agent killed (SIGKILL) in the middle of quarantining: after a restart
nothing is lost (the file is either on the medium or in the quarantine, and
ends up in the quarantine) and nothing is duplicated (one entry, one event)."""
from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from baomi.agent import quarantine as q
from tests.support import enforce_files as docs
from tests.support.enforce_harness import AgentProcess as Agent, wait_for, write
from tests.support.media import LoopMedium

pytestmark = [pytest.mark.root, pytest.mark.timeout(180)]
REPO = Path(__file__).resolve().parents[2]

def _cli(conf: Path, *args: str) -> list[dict]:
    out = subprocess.run([sys.executable, "-m", "baomi.agent.cli", *args, "--config", str(conf), "--json"],
                         cwd=REPO, capture_output=True, text=True, check=True).stdout
    return [json.loads(l) for l in out.splitlines()]


@pytest.mark.parametrize("stage", ["intent", "storing", "stored", "removed", "recorded"])
def test_sigkill_while_quarantining(stage: str) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="baomi-crash-"))
    priv, pub = q.keygen(tmp / "keys")
    state = tmp / "state"
    conf = tmp / "agent.toml"
    conf.write_text(f'[paths]\nstate_dir = "{state}"\n[quarantine]\npublic_key = "{pub}"\n[scan]\nrule_dirs = []\n'
                    '[enforce]\ngateway = false\n')  # the after-write block steps (held mode: tests/gateway)
    # > 2 MiB so that "storing" falls in the middle of writing the encrypted entry
    data = docs.filler(3 * 1024 * 1024 + 123, marked=True)
    agent = None
    with LoopMedium("exfat", size_mb=64, workdir=tmp) as loop:
        mp = loop.mount()
        medium = {"key": f"{loop.devnode}:{loop.fs_uuid}", "devnode": loop.devnode, "mountpoint": str(mp),
                  "read_only": False, "medium_class": "personal", "level_ceiling": None,
                  "identity": {"fs_uuid": loop.fs_uuid, "devnode": loop.devnode}}
        try:
            base = conf.read_text()
            conf.write_text(base + f'[debug]\ncrash_at = "{stage}"\n')
            agent = Agent(conf, medium)
            conf.write_text(base)
            write(mp / "机密文件.txt", data)
            assert agent.proc.wait(timeout=60) == -signal.SIGKILL
            # at the moment of the crash the file is on the medium or whole in the quarantine
            entries = list((state / "quarantine").glob("*.bqe"))
            assert (mp / "机密文件.txt").exists() or len(entries) == 1
            assert len(list((state / "quarantine" / "journal").glob("*.json"))) == 1

            agent = Agent(conf, medium)  # restart: recovery runs at start and on the mount
            wait_for(lambda: not (mp / "机密文件.txt").exists()
                     and not list((state / "quarantine" / "journal").glob("*.json")), 60, "recovery")
            agent.stop()
        finally:
            if agent:
                agent.proc.kill() if agent.proc.poll() is None else None
                agent.proc.wait(timeout=10)
        assert not (mp / "机密文件.txt").exists()
        assert os.listdir(mp) == []  # no 0-byte leftover
    blocked = [e for e in _cli(conf, "events") if e["kind"] == "file.blocked"]
    assert len(blocked) == 1, "exactly one file.blocked event"
    rows = _cli(conf, "quarantine", "list")
    assert len(rows) == 1 and rows[0]["id"] == blocked[0]["details"]["quarantine_id"]
    assert rows[0]["sha256"] == blocked[0]["file"]["sha256"]
    out = io.BytesIO()
    q.Quarantine(state / "quarantine", None, 1 << 30).decrypt(rows[0]["id"], q.load_private_key(priv), out)
    assert out.getvalue() == data
    assert not list((state / "quarantine").glob(".*.tmp"))
