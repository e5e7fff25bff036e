"""`baomi-agent discover`: --now runs a pass that records into the agent's spool; without it,
what is on record; exit status 1 while classified files are on record."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from baomi.agent.agent_key import load_or_create
from baomi.agent.spool import open_spool

pytestmark = pytest.mark.timeout(120)
EXE = Path(sys.executable).parent / "baomi-agent"


def _discover(config: Path, *args: str) -> tuple[int, dict]:
    res = subprocess.run([str(EXE), "discover", "--config", str(config), "--json", *args],
                         capture_output=True, text=True, timeout=90)
    assert res.stdout, res.stderr
    return res.returncode, json.loads(res.stdout)


def test_discover_now_records_and_reports(tmp_path: Path) -> None:
    (tmp_path / "srv/docs").mkdir(parents=True)
    marked = tmp_path / "srv/docs/合同.txt"
    marked.write_text("秘密★1年\n合同条款\n", encoding="utf-8")
    (tmp_path / "srv/docs/readme.txt").write_text("使用说明\n", encoding="utf-8")
    config = tmp_path / "agent.toml"
    config.write_text('[host]\nclass = "unclassified"\n[paths]\nstate_dir = "state"\n'
                      '[discovery]\npaths = ["srv"]\n')
    assert _discover(config) == (0, {"found": {}, "host_class": "unclassified"})  # nothing yet
    code, out = _discover(config, "--now", "--full-speed")
    assert code == 1 and out["found"] == {"confidential": [str(marked)]}
    assert out["last_pass"] | {"bytes": 0} == {"pass": 1, "files": 2, "bytes": 0, "scanned": 2, "hashed": 0,
                                               "found": 1, "resolved": 0}
    marked.unlink()
    code, out = _discover(config, "--now")  # polite: idle priority, cpu_share pauses
    assert (code, out["found"], out["last_pass"]["resolved"]) == (0, {}, 1)
    state = tmp_path / "state"
    spool = open_spool(state, load_or_create(state).agent_id)
    try:
        recorded = list(spool.iter_events())
    finally:
        spool.close()
    kinds = [e["kind"] for e in recorded]
    assert kinds == ["file.found_at_rest", "discovery.finished", "file.at_rest_resolved", "discovery.finished"]
    # each pass says what is held at rest after it, by level (the console's per-host counts)
    held = [e["details"]["at_rest"] for e in recorded if e["kind"] == "discovery.finished"]
    assert held == [{"internal": 0, "confidential": 1, "secret": 0, "top_secret": 0},
                    {"internal": 0, "confidential": 0, "secret": 0, "top_secret": 0}]


def test_discover_now_refuses_a_classified_host(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text('[host]\nclass = "classified"\n[paths]\nstate_dir = "state"\n')
    res = subprocess.run([str(EXE), "discover", "--now", "--config", str(config)], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 2 and "unclassified hosts" in res.stderr
