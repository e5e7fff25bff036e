"""`baomi-agent scan` and the Scanner's worker pool against real files and
processes: exit codes, JSON, folders, links, special files, vanished files,
time and memory limits, a killed worker, threads."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from baomi.agent.config import AgentConfig
from baomi.common.levels import Level
from baomi.agent.scan.engine import Scanner
from tests.support import docs

AGENT = [sys.executable, "-m", "baomi.agent.cli"]
pytestmark = pytest.mark.timeout(120)


def scan(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*AGENT, "scan", *args], capture_output=True, text=True, timeout=90, cwd=cwd)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    (root / "sub" / "深层").mkdir(parents=True)
    (root / "通知.docx").write_bytes(docs.docx(["秘密★1年", "关于年终工作的通知"]))
    (root / "sub" / "plain.txt").write_text("会议纪要\n明天开会。\n", encoding="utf-8")
    (root / "sub" / "深层" / "资料.zip").write_bytes(docs.zip_of({"内/报告.txt": "绝密★长期\n".encode("gbk")},
                                                                 gbk_names=True))
    return root


def test_json_lines_levels_and_exit_one(tree: Path) -> None:
    r = scan("--json", str(tree))
    assert r.returncode == 1, r.stderr
    rows = {Path(o["path"]).name: o for o in map(json.loads, r.stdout.splitlines())}
    assert set(rows) == {"通知.docx", "plain.txt", "资料.zip"}
    z = rows["资料.zip"]
    assert z["level"] == "top_secret" and z["inspectable"] is True and z["type"] == "application/zip"
    assert z["evidence"][0]["location"]["member"] == "内/报告.txt" and len(z["sha256"]) == 64
    assert set(z["evidence"][0]) == {"rule", "zone", "location", "level", "hash"}
    assert rows["plain.txt"]["level"] == "public" and rows["plain.txt"]["evidence"] == []
    assert rows["通知.docx"]["level"] == "confidential"


def test_exit_zero_when_nothing_marked_and_readable_lines(tree: Path) -> None:
    r = scan(str(tree / "sub" / "plain.txt"))
    assert r.returncode == 0 and r.stdout.startswith("public") and "plain.txt" in r.stdout
    r = scan(str(tree))
    assert "cn.national.star@first_page_top[内/报告.txt]" in r.stdout


def test_usage_errors_exit_two(tmp_path: Path) -> None:
    r = scan(str(tmp_path / "missing.docx"))
    assert r.returncode == 2 and "missing.docx: no such file or folder" in r.stderr
    assert scan().returncode == 2
    assert scan("--jobs", "0", str(tmp_path)).returncode == 2
    bad = tmp_path / "rules.d"
    bad.mkdir()
    (bad / "x.toml").write_text("[[rule]]\nid = 'x'\nkind = 'marking'\npattern = '('\nlevel = 'secret'\n")
    conf = tmp_path / "agent.toml"
    conf.write_text(f'[scan]\nrule_dirs = ["{bad}"]\n')
    r = scan("--config", str(conf), str(tmp_path))
    assert r.returncode == 2 and "x.toml" in r.stderr and "pattern" in r.stderr


def test_links_loops_and_special_files(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "loop").symlink_to(tmp_path)
    (tmp_path / "a" / "m.txt").write_text("机密★1年\n")
    (tmp_path / "a" / "link.txt").symlink_to(tmp_path / "a" / "m.txt")
    os.mkfifo(tmp_path / "a" / "pipe")
    r = scan("--json", str(tmp_path))
    rows = {Path(o["path"]).name: o for o in map(json.loads, r.stdout.splitlines())}
    assert rows["m.txt"]["level"] == "secret"
    assert rows["loop"]["reason"] == "unsupported" and rows["link.txt"]["reason"] == "unsupported"
    assert rows["pipe"]["inspectable"] is False and rows["pipe"]["reason"] == "unsupported"
    assert len(rows) == 4, "the loop is not followed"
    # a link named on the command line is followed: the user asked for it
    r = scan("--json", str(tmp_path / "a" / "link.txt"))
    assert json.loads(r.stdout)["level"] == "secret"


def cfg(**scan: object) -> AgentConfig:
    c = AgentConfig()
    c.scan.rule_dirs = []
    for k, v in scan.items():
        setattr(c.scan, k, v)
    return c


def test_vanished_file_and_timeout_and_memory(tmp_path: Path) -> None:
    with Scanner(cfg(), jobs=1) as s:
        v = s.scan_file(tmp_path / "never-was.txt")
        assert (v.inspectable, v.reason) == (False, "vanished")
    big = tmp_path / "big.txt"
    big.write_text("正文内容\n" * 3_000_000, encoding="utf-8")
    with Scanner(cfg(timeout_s=0.05), jobs=1) as s:
        v = s.scan_file(big)
        assert (v.inspectable, v.reason) == (False, "timeout")
        small = tmp_path / "small.txt"
        small.write_text("机密★1年\n")
        assert s.scan_file(small).level == Level.SECRET, "the killed worker was replaced"
    with Scanner(cfg(memory_mb=40), jobs=1) as s:
        v = s.scan_file(big)
        assert (v.inspectable, v.reason) == (False, "limit_exceeded")
        assert s.scan_file(small).level == Level.SECRET


def test_worker_killed_from_outside_is_replaced(tmp_path: Path) -> None:
    f = tmp_path / "m.txt"
    f.write_text("秘密★1年\n")
    with Scanner(cfg(), jobs=1) as s:
        assert s.scan_file(f).level == Level.CONFIDENTIAL
        (w,) = list(s._all)
        os.kill(w.proc.pid, signal.SIGKILL)
        w.proc.wait()
        assert s.scan_file(f).level == Level.CONFIDENTIAL


def test_workers_started_before_the_settings_scan_confined_and_the_spares_are_stopped(tmp_path: Path) -> None:
    """`baomi-agent scan` starts its workers before it reads its configuration: the
    Scanner gives them its settings (and so its confinement) and stops those it did
    not need."""
    from baomi.agent.scan.spawn import start_workers
    f = tmp_path / "m.txt"
    f.write_text("秘密★1年\n")
    started = start_workers(2)
    with Scanner(cfg(), jobs=1, prestarted=started) as s:
        assert s.scan_file(f).level == Level.CONFIDENTIAL
        (w,) = list(s._all)
        assert w.proc.pid in {p.proc.pid for p in started}
        assert (w.uid != 0) == (os.geteuid() == 0), "it gave up root as any other worker does"
    assert all(p.proc.poll() is not None for p in started), "the scanner's and the spare one are gone"


def test_a_worker_started_early_that_died_is_replaced(tmp_path: Path) -> None:
    from baomi.agent.scan.spawn import start_workers
    f = tmp_path / "m.txt"
    f.write_text("秘密★1年\n")
    (dead,) = start_workers(1)
    dead.proc.kill()
    dead.proc.wait()
    with Scanner(cfg(), jobs=1, prestarted=[dead]) as s:
        assert s.scan_file(f).level == Level.CONFIDENTIAL
        (w,) = list(s._all)
        assert w.proc.pid != dead.proc.pid


def test_a_scan_whose_rules_do_not_load_leaves_no_worker_running(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse
    from baomi.agent.commands import scan as command
    taken: list = []
    real = command.start_workers
    monkeypatch.setattr(command, "start_workers", lambda n: taken.extend(real(n)) or taken)
    bad = tmp_path / "rules.d"
    bad.mkdir()
    (bad / "x.toml").write_text("[[rule]]\nid = 'x'\nkind = 'marking'\npattern = '('\nlevel = 'secret'\n")
    conf = tmp_path / "agent.toml"
    conf.write_text(f'[scan]\nrule_dirs = ["{bad}"]\n')
    (tmp_path / "a.txt").write_text("x\n")
    args = argparse.Namespace(paths=[str(tmp_path)], json=False, jobs=2, no_progress=True, config=str(conf))
    assert command.run(args) == 2
    assert len(taken) == 2 and all(p.proc.poll() is not None for p in taken)


def test_workers_run_at_the_priority_asked(tmp_path: Path) -> None:
    """The daemon's scanning processes yield the CPU to the user's own work (nice)."""
    f = tmp_path / "m.txt"
    f.write_text("秘密★1年\n")
    base = os.getpriority(os.PRIO_PROCESS, 0)
    with Scanner(cfg(), jobs=1, nice=5) as s:
        assert s.scan_file(f).level == Level.CONFIDENTIAL
        (w,) = list(s._all)
        # an absolute nice value; without privilege a process can only go lower (a higher value)
        assert os.getpriority(os.PRIO_PROCESS, w.proc.pid) == (5 if os.geteuid() == 0 else max(5, base))
    with Scanner(cfg(), jobs=1) as s:
        s.scan_file(f)
        (w,) = list(s._all)
        assert os.getpriority(os.PRIO_PROCESS, w.proc.pid) == base


def test_threads_share_the_pool(tmp_path: Path) -> None:
    files = []
    for i in range(40):
        f = tmp_path / f"f{i}.txt"
        f.write_text(("机密★1年\n" if i % 4 == 0 else "") + f"第{i}号文件\n", encoding="utf-8")
        files.append(f)
    results: dict[str, Level] = {}
    with Scanner(cfg(), jobs=2) as s:
        def work(part: list[Path]) -> None:
            for f in part:
                results[f.name] = s.scan_file(f).level
        threads = [threading.Thread(target=work, args=(files[i::4],)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert {n for n, l in results.items() if l == Level.SECRET} == {f"f{i}.txt" for i in range(0, 40, 4)}
    assert len(results) == 40


def test_a_given_sha256_is_reported_and_used_instead_of_hashing_again(tmp_path: Path) -> None:
    import hashlib
    f = tmp_path / "m.txt"
    f.write_text("秘密★1年\n")
    real = hashlib.sha256(f.read_bytes()).hexdigest()
    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * 4096)
    with Scanner(cfg(max_file_bytes=1024), jobs=1) as s:
        assert s.scan_file(f).sha256 == real
        v = s.scan_file(f, "ab" * 32)
        assert v.sha256 == "ab" * 32 and v.level == Level.CONFIDENTIAL
        assert s.scan_file(big).sha256 == hashlib.sha256(big.read_bytes()).hexdigest()
        v = s.scan_file(big, "cd" * 32)
        assert v.sha256 == "cd" * 32 and v.reason == "too_large"


def test_a_scanner_given_no_rules_uses_the_fingerprints_in_the_state_folder(tmp_path: Path) -> None:
    """Scanner(config) builds its rules as the daemon and `baomi-agent scan` do
    (RuleSet.for_config): the default database is state_dir/fingerprints.db."""
    import hashlib
    from baomi.agent.scan.fingerprint import FingerprintDB
    c = cfg()
    c.paths.state_dir = tmp_path / "state"
    f = tmp_path / "registered.txt"
    f.write_text("一份登记过的文件。\n")
    sha = hashlib.sha256(f.read_bytes()).hexdigest()
    db = FingerprintDB(tmp_path / "state" / "fingerprints.db")
    db.add("登记文件", Level.SECRET, sha, f.read_text())
    db.close()
    other = tmp_path / "other.txt"
    other.write_text("无关内容\n")
    with Scanner(c, jobs=1) as s:
        v = s.scan_file(f)
        assert v.level == Level.SECRET and [e.rule for e in v.evidence] == ["fingerprint.exact"]
        assert s.scan_file(other).level == Level.PUBLIC
        v = s.scan_file(other, sha)  # the caller's hash is the one the rules see
        assert v.level == Level.SECRET and [e.rule for e in v.evidence] == ["fingerprint.exact"]
