"""`baomi-agent check` in the lab's namespace: a host that breaks every rule fails, with each
finding and its rule; a clean one passes. Sample reports go to test-artifacts/check-*/."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.rfkill import add_radio

from .conftest import wait_event, write_config

pytestmark = [pytest.mark.root, pytest.mark.timeout(120)]

GOOD_SHADOW = "root:!:20000:0:99999:7:::\n"


def check(netlab, config: Path, out: Path) -> tuple[int, dict]:
    exe = Path(sys.executable).parent / "baomi-agent"
    res = subprocess.run([*netlab.exec(), str(exe), "check", "--config", str(config), "--out", str(out), "--json"],
                         capture_output=True, text=True, timeout=60)
    assert res.stdout, res.stderr
    return res.returncode, json.loads(res.stdout)


def test_a_host_breaking_the_rules_fails_with_every_finding(netlab, start_agent, listen, tmp_path: Path,
                                                            artifacts: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\nzhang:x:1000:1000::/home/zhang:/bin/bash\n")
    (tmp_path / "etc/shadow").write_text(GOOD_SHADOW + "zhang:$6$s$h:19000:0:99999:7:::\n")
    (tmp_path / "etc/exports").write_text("/srv/docs *(rw)\n")
    config = write_config(tmp_path, block_radios=False)  # the agent records; the radio stays on for check
    add_radio(tmp_path / "rfkill", 0, "wlan", "phy0")
    agent = start_agent(config)
    netlab.add_default_route()
    wait_event(config, "host.external_connection")
    agent.stop()
    listen("0.0.0.0", 8000)
    code, rep = check(netlab, config, tmp_path / "report")
    assert code == 1 and rep["summary"]["result"] == "fail" and rep["summary"]["applies"] is True
    assert set(rep["summary"]["reasons"]) >= {
        "network: default_route", "network: external_connection", "wireless: radio_on", "sharing: nfs",
        "passwords: password_too_old"}
    ext = next(f for f in rep["findings"] if f["finding"] == "external_connection")
    assert ext["severity"] == "critical" and ext["details"]["probe"] == "198.51.100.10:8443"
    assert ext["rule"]["text"] == "不得将涉密计算机及其网络连接互联网或其他公共信息网。"
    assert "host.external_connection" in [h["kind"] for h in rep["history"]]  # what the agent recorded
    assert "sharing: listener" in rep["summary"]["reasons"]
    html = (tmp_path / "report/check.html").read_text("utf-8")
    assert "不合格 FAIL" in html and "专用电脑或数据库不得上网或设立共享。" in html and "password_too_old" in html
    assert json.loads((tmp_path / "report/check.json").read_text("utf-8")) == rep
    shutil.copytree(tmp_path / "report", artifacts / "check-fail", dirs_exist_ok=True)


def test_a_clean_classified_host_passes(netlab, tmp_path: Path, artifacts: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (tmp_path / "etc/shadow").write_text(GOOD_SHADOW)
    add_radio(tmp_path / "rfkill", 0, "wlan", "phy0", soft="1")
    config = write_config(tmp_path, screenlock=True)  # `check` reads the setting; nothing locks here
    code, rep = check(netlab, config, tmp_path / "report")
    assert (code, rep["summary"]) == (0, {"result": "pass", "reasons": [], "applies": True}), rep["findings"]
    assert rep["sections"]["network"]["probes"][0]["answered"] is False
    assert {r["interface"] for r in rep["sections"]["network"]["routes"]} == {"site0"}
    assert rep["sections"]["wireless"]["radios"][0]["soft"] is True and rep["history"] == []
    assert "合格 PASS" in (tmp_path / "report/check.html").read_text("utf-8")
    shutil.copytree(tmp_path / "report", artifacts / "check-pass", dirs_exist_ok=True)
