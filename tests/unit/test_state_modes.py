"""Finding 10 (agent side): every state file and folder of the agent is private whatever
the umask — the spool and its -wal/-shm, the key, the quarantine and its journal."""
from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PROBE = r"""
import os, sys
from pathlib import Path
from baomi.agent import quarantine as q
from baomi.agent.config import AgentConfig
from baomi.agent.context import open_context
from baomi.agent.enforce.block import Blocker
from baomi.agent.enforce.journal import Journal
os.umask(0o022)
tmp = Path(sys.argv[1])
priv, pub = q.keygen(tmp / "keys")
cfg = AgentConfig()
cfg.paths.state_dir = tmp / "state"
ctx = open_context(cfg)
ctx.record("agent.started")
quar = q.Quarantine(tmp / "state" / "quarantine", q.load_public_key(pub), 1 << 30)
blocker = Blocker(ctx, quar, Journal(tmp / "state" / "quarantine" / "journal"))
medium = tmp / "medium"
medium.mkdir()
(medium / "a.txt").write_bytes(b"x" * 100)
with open(medium / "a.txt", "rb") as src:
    blocker.block(src=src, path=str(medium / "a.txt"), mountpoint=str(medium), medium_key="m",
                  sha256=sys.argv[2], size=100, level="secret",
                  fields={"medium": {}, "file": {"path": "a.txt"}, "rule": "r", "user": None})
ctx.spool.close()
"""


def test_agent_state_is_private_under_umask_022(tmp_path: Path) -> None:
    sha = hashlib.sha256(b"x" * 100).hexdigest()
    out = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path), sha], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    state = tmp_path / "state"
    checked = 0
    for path in [state, *state.rglob("*")]:
        mode = stat.S_IMODE(os.lstat(path).st_mode)
        assert mode & 0o077 == 0, f"{path} is {oct(mode)}"
        checked += 1
    names = {p.name for p in state.rglob("*")}
    assert {"spool.db", "agent.key", "quarantine", "journal"} <= names and checked >= 6
    assert any(n.endswith(".bqe") for n in names), "a quarantine entry was written"
