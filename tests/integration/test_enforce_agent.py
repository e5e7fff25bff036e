"""End to end through `baomi-agent run`: the media component finds a personal
exFAT medium on a loop device, enforcement blocks a marked file copied to it —
held by the staging gateway (the default: the copy fails, nothing lands) and
after the write (the fallback: the file is wiped and removed). Either way the
raw device holds no piece of the blocked file afterwards."""
from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.support import enforce_files as docs
from tests.support.agent_run import AGENT, REPO, AgentRun, gateway_unavailable, media_component_available
from tests.support.enforce_harness import wait_for, write
from tests.support.media import LoopMedium

pytestmark = [pytest.mark.root, pytest.mark.timeout(180)]


def _pieces(data: bytes, n: int = 8, size: int = 64) -> list[bytes]:
    step = max(1, (len(data) - size) // n)
    return [data[i:i + size] for i in range(0, len(data) - size, step)][:n]


def _on_raw_device(image: Path, pieces: list[bytes]) -> list[int]:
    raw = image.read_bytes()
    return [i for i, piece in enumerate(pieces) if piece in raw]


@pytest.mark.parametrize("mode", ["held", "after_write"])
def test_baomi_agent_run_blocks_marked_copy_to_personal_exfat(artifacts: Path, mode: str) -> None:
    if media_component_available():
        pytest.skip(media_component_available())
    if mode == "held" and gateway_unavailable():
        pytest.skip(f"staging gateway not available here: {gateway_unavailable()}")
    tmp = Path(tempfile.mkdtemp(prefix="baomi-e2e-"))
    agent = None
    try:
        # a loop number no other test takes: the agent is told about this node only
        with LoopMedium("exfat", size_mb=64, workdir=tmp, loop_range=range(600, 700)) as loop:
            mp = loop.mount()
            agent = AgentRun(tmp, [loop], mode=mode, log_path=artifacts / f"enforce-e2e-agent-{mode}.log",
                             extra_toml="[collector]\nheartbeat_s = 1.0\n")
            # the medium is there before the agent: its first enumeration must reach enforcement
            agent.start()
            wait_for(lambda: agent.events("medium.inventory"), 60, "the inventory of the medium")
            marked = docs.docx(docs.MARK)
            if mode == "held":
                with pytest.raises(PermissionError):  # close() fails: `cp` says "Permission denied"
                    write(mp / "机密方案.docx", marked)
                assert not (mp / "机密方案.docx").exists()  # not even for a moment after the copy
            else:
                write(mp / "机密方案.docx", marked)
            write(mp / "plain.txt", b"hello")
            wait_for(lambda: not (mp / "机密方案.docx").exists(), 30, "the marked file to be blocked")
            def copies() -> dict[str, dict] | None:
                found = {e["file"]["name"]: e for e in agent.cli_events()
                         if e["kind"] in ("file.blocked", "file.copied")}
                return found if len(found) >= 2 else None
            kinds = wait_for(copies, 30, "two copy events")
            assert (mp / "plain.txt").read_bytes() == b"hello"
            # the heartbeat says how this medium is enforced, under the key enforce.mode gives it,
            # and how the workers that judged its files ran
            (mode_event,) = agent.events("enforce.mode")
            key = mode_event["medium"]["key"]
            def beat() -> dict | None:
                return next((e["details"] for e in reversed(agent.events("agent.heartbeat"))
                             if e["details"].get("scan_workers")), None)
            heartbeat = wait_for(beat, 30, "a heartbeat after the first scan")
            assert heartbeat["enforcement"] == {key: mode}
            workers = heartbeat["scan_workers"]
            assert workers["state"] in ("confined", "partial") and workers["uid"] != 0, workers
            loop.unmount()
            wait_for(lambda: not agent.hidden_mounts(), 30, "the gateway to release the medium")
            subprocess.run(["sync"], check=True)
            assert _on_raw_device(loop.image, _pieces(marked)) == [], "pieces of the blocked file on the raw device"
    finally:
        if agent is not None:
            agent.stop()
    blocked = kinds["机密方案.docx"]
    assert blocked["kind"] == "file.blocked" and blocked["host"]["name"] == "e2e-pc"
    assert blocked["details"]["held"] is (mode == "held")
    if mode == "after_write":
        assert blocked["details"]["wiped"] is True and blocked["details"]["removed"] is True
    assert blocked["medium"]["class"] == "personal" and blocked["medium"]["fs_uuid"]
    assert kinds["plain.txt"]["kind"] == "file.copied"
    out = subprocess.run([*AGENT, "quarantine", "list", "--config", str(agent.conf), "--json"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    (row,) = [json.loads(l) for l in out.splitlines()]
    assert row["id"] == blocked["details"]["quarantine_id"]
    restored = tmp / "restored"
    subprocess.run([*AGENT, "quarantine", "restore", row["id"], "--config", str(agent.conf), "--key",
                    str(agent.priv), "--to", str(restored)], cwd=REPO, check=True, capture_output=True)
    assert (restored / "机密方案.docx").read_bytes() == marked
