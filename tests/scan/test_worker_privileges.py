"""Scan workers parse documents without privileges: they become an unprivileged user
with no capability and no way to gain one, and read only the descriptors the agent
hands them (agent/scan/sandbox.py, agent/scan/opening.py)."""
from __future__ import annotations

import os
import pwd
import threading
from pathlib import Path

import pytest

from baomi.agent import config as agent_config
from baomi.agent.scan.engine import Scanner
from baomi.agent.scan.fingerprint import FingerprintDB
from baomi.agent.scan.opening import open_for_scan
from baomi.agent.scan.verdict import Verdict
from baomi.common.levels import Level
from tests.scan.test_fingerprint import PARAS
from tests.support import docs

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="workers give up privileges only when the agent is root")


def _config(tmp_path: Path, extra: str = "") -> agent_config.AgentConfig:
    conf = tmp_path / "agent.toml"
    conf.write_text(f'[paths]\nstate_dir = "{tmp_path / "state"}"\n[scan]\nrule_dirs = []\n{extra}')
    return agent_config.load(conf)


def _status(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def _worker_pids(scanner: Scanner) -> list[int]:
    return [w.proc.pid for w in scanner._all]


def _protected(tmp_path: Path, name: str, data: bytes) -> Path:
    """A file only root may read, in a folder only root may enter."""
    folder = tmp_path / "root-only"
    folder.mkdir(mode=0o700, exist_ok=True)
    f = folder / name
    f.write_bytes(data)
    f.chmod(0o600)
    return f


@needs_root
def test_workers_run_unprivileged_and_still_judge_files_only_root_may_read(tmp_path: Path) -> None:
    secret = _protected(tmp_path, "通知.docx", docs.docx(["机密★1年", "关于某项工作的通知"]))
    with Scanner(_config(tmp_path)) as scanner:
        v = scanner.scan_file(secret)
        assert v.level == Level.SECRET and v.inspectable, v
        (pid,) = _worker_pids(scanner)
        st = _status(pid)
        uid = int(st["Uid"].split()[0])
        assert uid != 0 and set(st["Uid"].split()) == {str(uid)}, st["Uid"]
        assert st["Groups"].strip() in ("", st["Gid"].split()[0]), st["Groups"]
        assert int(st["CapEff"], 16) == 0 and int(st["CapPrm"], 16) == 0, (st["CapEff"], st["CapPrm"])
        assert st["NoNewPrivs"].strip() == "1"
        assert pwd.getpwuid(uid).pw_name == scanner.identity.name
        # not dumpable: its /proc files belong to root, so no process of its user reads its memory
        assert os.stat(f"/proc/{pid}/mem").st_uid == 0
        # a network of its own, with nothing in it
        assert os.stat(f"/proc/{pid}/ns/net").st_ino != os.stat("/proc/self/ns/net").st_ino
        with open(f"/proc/{pid}/net/dev") as f:
            assert [line.split(":")[0].strip() for line in f.readlines()[2:]] == ["lo"]


@needs_root
def test_worker_user_empty_keeps_root(tmp_path: Path) -> None:
    with Scanner(_config(tmp_path, 'worker_user = ""\n')) as scanner:
        assert scanner.identity is None
        scanner.scan_file(_protected(tmp_path, "a.txt", "秘密★6个月\n".encode()))
        (pid,) = _worker_pids(scanner)
        assert _status(pid)["Uid"].split()[0] == "0"


@needs_root
def test_missing_worker_user_falls_back_to_nobody(tmp_path: Path) -> None:
    with Scanner(_config(tmp_path, 'worker_user = "no-such-user-here"\n')) as scanner:
        assert scanner.identity is not None and scanner.identity.name == "nobody"
        v = scanner.scan_file(_protected(tmp_path, "a.txt", "秘密★6个月\n".encode()))
        assert v.level == Level.CONFIDENTIAL


def _kernel_has_landlock() -> bool:
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.syscall(444, None, 0, 1) >= 1   # landlock_create_ruleset(NULL, 0, VERSION): the ABI


@needs_root
def test_the_heartbeat_says_as_whom_and_how_confined_the_workers_run(tmp_path: Path) -> None:
    from baomi.agent.heartbeat import scan_workers
    with Scanner(_config(tmp_path)) as scanner:
        scanner.scan_file(_protected(tmp_path, "a.txt", "秘密★6个月\n".encode()))
        (pid,) = _worker_pids(scanner)
        uid = int(_status(pid)["Uid"].split()[0])
        report = scan_workers()
    assert report is not None and (report["user"], report["uid"]) == (scanner.identity.name, uid) and uid != 0
    assert report["state"] == ("partial" if report["refused"] else "confined"), report
    if _kernel_has_landlock():
        assert not any("Landlock" in r for r in report["refused"]), report
    with Scanner(_config(tmp_path, 'worker_user = ""\n')) as scanner:
        scanner.scan_file(_protected(tmp_path, "b.txt", b"plain"))
        report = scan_workers()
    assert (report["state"], report["user"], report["uid"]) == ("root", None, 0)


def test_bad_worker_user_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(agent_config.ConfigError, match="worker_user"):
        _config(tmp_path, 'worker_user = "../etc"\n')


@needs_root
def test_fingerprint_registered_after_the_workers_gave_up_root_is_matched(tmp_path: Path) -> None:
    """Regression: a worker reads the root-only fingerprint database before it drops
    root and cannot read it again; the scanner starts fresh workers when it changes."""
    cfg = _config(tmp_path)
    excerpt = _protected(tmp_path, "摘录.txt", "\n".join(PARAS[2:6]).encode("gb18030"))
    with Scanner(cfg) as scanner:
        assert scanner.scan_file(excerpt).level == Level.PUBLIC      # a worker is up, database empty
        db_path = Path(cfg.state_dir) / "fingerprints.db"
        db = FingerprintDB(db_path)
        db.add("方案", Level.SECRET, "0" * 64, "\n".join(PARAS))
        db.close()
        os.chmod(db_path.parent, 0o700)
        v = scanner.scan_file(excerpt)
        assert v.level == Level.SECRET and v.evidence[0].rule == "fingerprint.partial", v


def test_open_for_scan_refuses_links_and_fifos_and_follows_descriptor_links(tmp_path: Path) -> None:
    target = tmp_path / "t.txt"
    target.write_text("机密★1年\n")
    link = tmp_path / "link"
    link.symlink_to(target)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path, reason in ((link, "unsupported"), (fifo, "unsupported"), (tmp_path / "gone", "vanished")):
        v = open_for_scan(str(path))
        assert isinstance(v, Verdict) and not v.inspectable and v.reason == reason, (path, v)
    with open(target, "rb") as f:
        fd = open_for_scan(f"/proc/self/fd/{f.fileno()}")
    assert isinstance(fd, int)
    try:
        assert os.read(fd, 100) == target.read_bytes()
    finally:
        os.close(fd)


def test_a_fifo_does_not_hang_a_scan(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    done: list[Verdict] = []
    with Scanner(_config(tmp_path)) as scanner:
        t = threading.Thread(target=lambda: done.append(scanner.scan_file(fifo)), daemon=True)
        t.start()
        t.join(20)
        assert done and done[0].reason == "unsupported", done


@pytest.mark.parametrize("answer", ["pickle", "not_json", "huge", "bad_level", "extra_field", "bad_evidence",
                                    "bad_reason"])
def test_a_subverted_worker_cannot_make_the_agent_run_code_or_take_a_forged_verdict(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, answer: str) -> None:
    """The agent reads a worker's answer as JSON of bounded size and checks every field:
    a worker taken over by a crafted document gets no code run in the agent, and an
    answer that is not a verdict makes the file not inspectable (fail closed)."""
    from baomi.agent.scan import spawn
    pwned = tmp_path / "pwned"
    monkeypatch.setenv("BAOMI_TEST_PWNED", str(pwned))
    monkeypatch.setenv("BAOMI_TEST_HOSTILE", answer)
    monkeypatch.setattr(spawn, "WORKER_MODULE", "tests.scan.hostile_worker")
    monkeypatch.chdir(Path(__file__).resolve().parents[2])    # where `tests` is importable
    target = tmp_path / "a.txt"
    target.write_text("机密★1年\n")
    with Scanner(_config(tmp_path)) as scanner:
        v = scanner.scan_file(target)
        assert not v.inspectable and v.reason == "corrupt" and "invalid verdict" in (v.detail or ""), v
        assert v.path == str(target)
        assert scanner._all == set(), "the worker that sent it is replaced"
    assert not pwned.exists()


PROBE = r'''
import json, os, socket, subprocess, sys
from baomi.agent.scan.sandbox import confine, worker_identity
missing = confine(worker_identity("nobody"))
def attempt(fn):
    try:
        fn()
        return "done"
    except OSError as exc:
        return type(exc).__name__
def connect():
    with socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=5):
        pass
out = {
    "missing": missing,
    "create_in_tmp": attempt(lambda: open(os.path.join(sys.argv[1], "left-behind"), "w").close()),
    "read_root_only": attempt(lambda: open(sys.argv[3], "rb").close()),
    "dev_null": attempt(lambda: subprocess.run(["true"], stdout=subprocess.DEVNULL, check=True)),
    "child_writes": subprocess.run(["sh", "-c", f"echo x > {sys.argv[1]}/by-child"], capture_output=True).returncode,
    "connect": attempt(connect),
    "kill_init": attempt(lambda: os.kill(1, 0)),
}
print(json.dumps(out))
'''


@needs_root
def test_a_confined_worker_leaves_no_file_reaches_no_network_and_reads_nothing_of_roots(tmp_path: Path) -> None:
    """What a worker taken over by a crafted document could try, tried in a process
    confined as the workers are (agent/scan/sandbox.py)."""
    import json
    import socket
    import subprocess
    import sys
    drop = tmp_path / "world-writable"
    drop.mkdir(mode=0o1777)
    drop.chmod(0o1777)
    secret = _protected(tmp_path, "key", b"root only")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        r = subprocess.run([sys.executable, "-c", PROBE, str(drop), str(listener.getsockname()[1]), str(secret)],
                           capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    landlock = not any("Landlock" in m for m in out["missing"])
    assert out["read_root_only"] == "PermissionError"
    assert out["dev_null"] == "done"
    assert out["connect"] != "done" and "network" not in " ".join(out["missing"]), out
    assert out["kill_init"] == "PermissionError"
    if not landlock:
        pytest.skip(f"no Landlock here ({out['missing']}): file writes are left to permissions")
    assert out["create_in_tmp"] == "PermissionError" and out["child_writes"] != 0, out
    assert list(drop.iterdir()) == []


def test_a_worker_verdict_round_trips_through_json_and_a_long_detail_is_cut() -> None:
    import json
    from baomi.agent.scan.verdict import Evidence
    v = Verdict(path="/media/u/盘/a.zip", level=Level.SECRET, inspectable=False, reason="encrypted",
                detail="x" * 5000, type="application/zip", size=12, sha256="a" * 64,
                evidence=[Evidence("cn.national.star", "first_page_top", Level.SECRET,
                                   {"member": "内/\udcff报告.txt", "line": 1, "ocr": True}, "b" * 64)])
    back = Verdict.from_worker(json.loads(json.dumps(v.to_json())), v.path)
    assert back.detail == "x" * 1000
    back.detail = v.detail
    assert back == v


@needs_root
def test_scan_by_a_user_without_privileges_confines_its_workers_and_names_what_it_may_not_read() -> None:
    """`baomi-agent scan` run by an ordinary user: its workers keep that user's identity
    and are confined all the same; a path the user may not read is named as such, not
    as missing."""
    import shutil
    import subprocess
    import sys
    import tempfile
    tmp_path = Path(tempfile.mkdtemp(prefix="baomi-test-"))    # pytest's own folder is root's alone
    tmp_path.chmod(0o755)
    try:
        _scan_as_nobody(tmp_path)
    finally:
        shutil.rmtree(tmp_path)


def _scan_as_nobody(tmp_path: Path) -> None:
    import subprocess
    import sys
    readable = tmp_path / "通知.txt"
    readable.write_text("秘密★6个月\n关于某事的通知\n", encoding="utf-8")
    readable.chmod(0o644)
    private = _protected(tmp_path, "私.txt", b"x")
    cmd = ["runuser", "-u", "nobody", "--", sys.executable, "-m", "baomi.agent.cli", "scan", "--json", "--jobs", "1"]
    r = subprocess.run([*cmd, str(readable)], capture_output=True, text=True, timeout=90,
                       cwd=Path(__file__).resolve().parents[2])
    assert r.returncode == 1 and '"confidential"' in r.stdout, r.stderr
    assert "less confined" not in r.stderr or "Landlock" in r.stderr, r.stderr
    r = subprocess.run([*cmd, str(private), str(tmp_path / "gone.txt")], capture_output=True, text=True, timeout=90)
    assert r.returncode == 2
    assert f"{private}: Permission denied" in r.stderr and "gone.txt: no such file or folder" in r.stderr, r.stderr
