"""`baomi-agent check` on an unclassified host, from what was recorded: USB storage history from
real kernel log lines (kern.log, gzipped, and the journal's export format) and the agent's own
records, media seen, screen lock, classified files found by a real discovery pass, quarantine and
blocked copies, and the event chain (announced drops, then tampering). Sample reports go to
test-artifacts/check-unclassified*/."""
from __future__ import annotations

import calendar
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import tomli_w

from baomi.agent.agent_key import load_or_create
from baomi.agent.quarantine import Quarantine, keygen, load_public_key
from baomi.agent.spool import open_spool

pytestmark = pytest.mark.timeout(180)
DATA = Path(__file__).resolve().parent / "data"
EXE = Path(sys.executable).parent / "baomi-agent"
SANDISK = {"vendor_id": "0781", "product_id": "5567", "serial": "4C530001231120115142", "product": "Cruzer Blade",
           "manufacturer": "SanDisk", "fs_uuid": "1C2A-7F3B"}
REGISTERED = {"vendor_id": "0930", "product_id": "6545", "serial": "0022CFF6B8A0C1A1", "product": "TransMemory",
              "fs_uuid": "5E21-0A9C", "registry_id": "BM-2025-017", "class": "registered", "level": "secret"}


def _config(tmp: Path) -> Path:
    logs = tmp / "log"
    logs.mkdir()
    for name, day in (("kern.log.2", 5), ("kern.log.1.gz", 12)):
        shutil.copy(DATA / name, logs / name)
        when = calendar.timegm((2025, 3, day, 0, 0, 0))
        os.utime(logs / name, (when, when))
    (tmp / "home/wang").mkdir(parents=True)
    (tmp / "home/wang/标书.txt").write_text("机密★1年\n投标报价\n", encoding="utf-8")
    (tmp / "home/wang/周报.txt").write_text("本周工作小结\n", encoding="utf-8")
    cfg = {"host": {"class": "unclassified", "name": "desk-07"}, "paths": {"state_dir": str(tmp / "state")},
           "discovery": {"paths": [str(tmp / "home")]},
           "check": {"kernel_logs": [str(logs / "kern.log*")], "journalctl": False,
                     "journal_export": [str(DATA / "journal-kernel.export")]}}
    path = tmp / "agent.toml"
    path.write_bytes(tomli_w.dumps(cfg).encode())
    return path


def _record(state: Path) -> None:
    """What a running agent would have recorded: media plugged in, a copy blocked, a lock, and a
    spool that overflowed once (its drops announced by agent.gap)."""
    spool = open_spool(state, load_or_create(state).agent_id, {"name": "desk-07", "class": "unclassified"})
    try:
        for _ in range(200):
            spool.record("agent.heartbeat", details={"pad": "x" * 400})
        spool.max_bytes = spool.used_bytes() // 3
        assert spool.enforce_cap() > 0
        spool.max_bytes = 10**9
        spool.record("medium.inserted", medium={**SANDISK, "class": "personal", "registry_id": None})
        spool.record("file.blocked", medium={**SANDISK, "class": "personal"},
                     file={"path": "标书.txt", "name": "标书.txt", "level": "secret"}, action="block")
        spool.record("medium.inserted", medium=REGISTERED)
        spool.record("medium.allowed", medium=REGISTERED)
        spool.record("screenlock.enforced", session={"id": "3"}, user={"uid": 1000, "name": "wang"})
    finally:
        spool.close()
    priv, pub = keygen(state.parent / "keys")
    Quarantine(state / "quarantine", load_public_key(pub), 10**8).store("q1", io.BytesIO(b"blocked copy"), {})


def _check(config: Path, out: Path) -> tuple[int, dict]:
    res = subprocess.run([str(EXE), "check", "--config", str(config), "--no-probe", "--json", "--out", str(out)],
                         capture_output=True, text=True, timeout=120, env={**os.environ, "TZ": "Asia/Shanghai"})
    assert res.stdout, res.stderr
    return res.returncode, json.loads(res.stdout)


def _reports(state: Path) -> list[dict]:
    spool = open_spool(state, load_or_create(state).agent_id)
    try:
        return list(spool.iter_events(kind="check.report"))
    finally:
        spool.close()


def _by(rep: dict, section: str) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for f in rep["findings"]:
        if f["section"] == section:
            out.setdefault(f["finding"], []).append(f)
    return out


def test_the_report_of_an_unclassified_host_from_its_records(tmp_path: Path, artifacts: Path) -> None:
    config = _config(tmp_path)
    state = tmp_path / "state"
    res = subprocess.run([str(EXE), "discover", "--now", "--full-speed", "--config", str(config)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 1, res.stderr  # one classified file found
    _record(state)
    code, rep = _check(config, tmp_path / "report")
    assert code == 1 and rep["summary"]["result"] == "fail" and rep["summary"]["applies"] is False
    assert rep["summary"]["reasons"] == ["at_rest: classified_file"]  # the rule that binds this host
    assert rep["policy_version"].startswith(str(config))

    usb = {d["serial"] or d["product"]: d for d in rep["sections"]["usb"]["devices"]}
    assert set(usb) == {"Mass Storage", SANDISK["serial"], "60A44C413A8CF1A0B9930011", REGISTERED["serial"]}
    assert usb[REGISTERED["serial"]]["sources"] == ["agent"]  # plugged in since baomi: in its records only
    sandisk = usb[SANDISK["serial"]]
    assert sandisk["first_seen"] == "2025-03-04T01:15:02Z" and "agent" in sandisk["sources"]
    assert sandisk["times_seen"] == 2 and "kern.log:kern.log.2" in sandisk["sources"]
    unrecorded = {f["details"]["vendor_id"] for f in _by(rep, "usb")["unrecorded_storage"]}
    assert unrecorded == {"058f", "0951"}  # seen by the kernel before baomi, never by the agent
    assert _by(rep, "usb")["unrecorded_storage"][0]["rule"]["text"].startswith("严禁使用来历不明的光盘和磁盘等存储设备")

    media = rep["sections"]["media"]
    assert media["by_class"] == {"personal": 1, "registered": 1} and media["actions"] == {"medium.allowed": 1}
    (personal,) = _by(rep, "media")["personal_medium"]
    assert personal["severity"] == "medium" and personal["details"]["serial"] == SANDISK["serial"]

    lock = rep["sections"]["screenlock"]
    assert lock["enabled"] is True and lock["idle_limit_s"] == 300 and lock["last_enforced"]
    assert _by(rep, "screenlock") == {}

    at_rest = rep["sections"]["at_rest"]
    assert at_rest["by_level"] == {"secret": 1} and at_rest["files"] == {"secret": [str(tmp_path / "home/wang/标书.txt")]}
    assert at_rest["last_pass"]["files"] == 2 and at_rest["last_pass"]["found"] == 1
    (f,) = _by(rep, "at_rest")["classified_file"]
    assert f["severity"] == "high" and "不得在非涉密计算机" in f["rule"]["text"] and f["rule"]["source"] == "004 计算机规则 2"

    q = rep["sections"]["quarantine"]
    assert (q["quarantined_files"], q["blocked_copies"], q["blocked_by_level"]) == (1, 1, {"secret": 1})

    dropped = _by(rep, "chain")
    assert set(dropped) == {"events_dropped"} and dropped["events_dropped"][0]["severity"] == "medium"
    assert rep["sections"]["chain"]["announced_gaps"]

    html = (tmp_path / "report/check.html").read_text("utf-8")
    for text in ("USB存储设备使用记录", "Cruzer Blade", "4C530001231120115142", "DataTraveler 3.0", "本机涉密文件",
                 "不合格 FAIL", "屏幕保护与锁屏", "审计记录完整性", "不得在非涉密计算机尤其是在连接互联网"):
        assert text in html, text
    assert json.loads((tmp_path / "report/check.json").read_text("utf-8")) == rep
    shutil.copytree(tmp_path / "report", artifacts / "check-unclassified", dirs_exist_ok=True)

    # the summary went into the spool as check.report, for the collector
    (ev,) = _reports(state)
    d = ev["details"]
    assert ev["severity"] == "high" and ev["action"] == "audit" and ev["host"]["name"] == "desk-07"
    assert d["format"] == {"report": "baomi.check", "version": rep["version"], "event_version": 2}
    assert d["report"] == rep   # small enough to travel whole: the console offers it as check.json
    assert (d["result"], d["applies"], d["reasons"]) == ("fail", False, ["at_rest: classified_file"])
    assert d["report_time"] == rep["time"] and d["policy_version"] == rep["policy_version"]
    checks = {c["id"]: c for c in d["checks"]}
    assert list(checks) == ["network", "wireless", "sharing", "passwords", "usb", "media", "screenlock", "at_rest",
                           "quarantine", "chain"]  # the report's order
    assert checks["at_rest"] == {"id": "at_rest", "status": "problem", "applies": True, "findings": 1,
                                 "severity": "high", "summary": f"classified_file ({tmp_path / 'home/wang/标书.txt'})"}
    assert checks["screenlock"]["status"] == "ok" and checks["screenlock"]["summary"] == "no findings"
    assert checks["usb"]["status"] == "problem" and checks["usb"]["summary"].startswith("unrecorded_storage")
    assert (checks["chain"]["status"], checks["chain"]["severity"]) == ("problem", "medium")
    assert checks["media"]["summary"] == f"personal_medium ({SANDISK['serial']})"
    assert all(not checks[s]["applies"] for s in ("network", "wireless", "sharing", "passwords"))
    counts = d["counts"]
    assert counts["checks"] == 10 and counts["findings"] == len(rep["findings"]) and counts["binding"] >= 4
    assert counts["ok"] + counts["problem"] + counts["unknown"] == 10
    assert counts["problem"] == sum(c["status"] == "problem" for c in d["checks"])
    assert {"section": "at_rest", "finding": "classified_file", "severity": "high",
            "subject": str(tmp_path / "home/wang/标书.txt")} in d["findings"]
    assert d["findings_omitted"] == max(0, len(rep["findings"]) - 50)
    assert len(json.dumps(ev, ensure_ascii=False)) < 64 * 1024  # the summary and a report of at most 48 KiB

    res = subprocess.run([str(EXE), "check", "--config", str(config), "--no-probe", "--no-record"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 1 and "FAIL" in res.stdout and len(_reports(state)) == 1  # nothing more recorded


def test_a_tampered_chain_and_a_file_removed_since_show_in_the_report(tmp_path: Path, artifacts: Path) -> None:
    config = _config(tmp_path)
    state = tmp_path / "state"
    subprocess.run([str(EXE), "discover", "--now", "--full-speed", "--config", str(config)], capture_output=True,
                   timeout=120)
    spool = open_spool(state, load_or_create(state).agent_id)
    for i in range(6):
        spool.record("medium.inserted", medium={**SANDISK, "class": "personal"}, details={"n": i})
    spool.close()
    db = sqlite3.connect(state / "spool.db")
    with db:
        (seq,) = db.execute("SELECT seq FROM events WHERE kind = 'medium.inserted' ORDER BY seq LIMIT 1 OFFSET 2").fetchone()
        db.execute("DELETE FROM events WHERE seq = ?", (seq,))                # an event removed
        body = json.loads(db.execute("SELECT body FROM events WHERE seq = ?", (seq + 2,)).fetchone()[0])
        body["details"]["n"] = 99                                               # and one rewritten
        db.execute("UPDATE events SET body = ? WHERE seq = ?", (json.dumps(body), seq + 2))
    db.close()
    (tmp_path / "home/wang/标书.txt").unlink()
    subprocess.run([str(EXE), "discover", "--now", "--full-speed", "--config", str(config)], capture_output=True,
                   timeout=120)
    code, rep = _check(config, tmp_path / "report")
    assert code == 1 and rep["summary"]["reasons"] == ["chain: chain_broken", "chain: unannounced_gap"]
    chain = _by(rep, "chain")
    assert chain["chain_broken"][0]["severity"] == "critical" and seq + 2 in chain["chain_broken"][0]["details"]["seqs"]
    assert chain["unannounced_gap"][0]["details"]["ranges"] == [[seq, seq]]
    assert rep["sections"]["at_rest"]["by_level"] == {} and _by(rep, "at_rest") == {}  # resolved: nothing on record
    (ev,) = _reports(state)
    checks = {c["id"]: c for c in ev["details"]["checks"]}
    assert ev["severity"] == "critical" and checks["chain"]["severity"] == "critical"
    assert checks["at_rest"] == {"id": "at_rest", "status": "ok", "applies": True, "findings": 0, "severity": None,
                                 "summary": "no findings"}
    shutil.copytree(tmp_path / "report", artifacts / "check-unclassified-tampered", dirs_exist_ok=True)
