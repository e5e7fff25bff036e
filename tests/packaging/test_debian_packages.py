"""The Debian packages as an IT department uses them: built by `packaging/build-deb`,
installed with apt and no network into a clean Debian 12 root (mmdebstrap), then
used, upgraded, removed and purged there. Needs root, mmdebstrap and the Debian
archive (for the clean root only; the packages themselves install offline)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import httpx
import pytest

from tests.support.skips import need_root, need_tools

pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.timeout(1800)]

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("BAOMI_TEST_ARTIFACTS", REPO / "test-artifacts"))
# what the packages' Depends: name, so the install itself needs no network
DEPENDS = ["python3.11", "python3", "libmagic1", "libarchive13", "fuse3", "libfuse3-3", "util-linux", "mount",
           "init-system-helpers", "adduser", "openssl", "passwd",
           "systemd"]   # not a dependency: the units are checked against a real systemd tree
ARCHIVE = "http://deb.debian.org/debian"


def _archive_reachable() -> bool:
    try:
        urllib.request.urlopen(f"{ARCHIVE}/dists/bookworm/Release", timeout=15).close()
        return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Root:
    """A clean Debian root with /proc and /dev, commands run in it by chroot."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.mounts: list[Path] = []

    def __enter__(self) -> "Root":
        for what, args in (("proc", ["-t", "proc", "proc"]), ("dev", ["--rbind", "--make-rslave", "/dev"])):
            target = self.path / what
            subprocess.run(["mount", *args, str(target)], check=True)
            self.mounts.append(target)
        return self

    def __exit__(self, *exc: object) -> None:
        for m in reversed(self.mounts):
            subprocess.run(["umount", "-R", "-l", str(m)], capture_output=True)

    def run(self, *cmd: str, check: bool = True, env: dict[str, str] | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess:
        e = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive",
             **(env or {})}
        r = subprocess.run(["chroot", str(self.path), *cmd], capture_output=True, text=True, env=e,
                           timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} in the clean root failed ({r.returncode}):\n"
                                 f"{r.stdout[-2000:]}\n{r.stderr[-3000:]}")
        return r

    def popen(self, *cmd: str, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
        e = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", **(env or {})}
        return subprocess.Popen(["chroot", str(self.path), *cmd], stdout=open(log, "ab"),
                                stderr=subprocess.STDOUT, env=e, start_new_session=True)


def _stop(p: subprocess.Popen) -> None:
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(10)


def _unit_line(unit: Path, key: str) -> list[str]:
    for line in unit.read_text().splitlines():
        if line.startswith(f"{key}="):
            return line.split("=", 1)[1].split()
    raise AssertionError(f"{unit.name} has no {key}=")


def _check_units(root: Path) -> dict[str, float]:
    """systemd-analyze verify on every unit, and the security exposure of the services."""
    need_tools("systemd-analyze")
    exposure = {}
    for unit in ("baomi-agent.service", "baomi-agent.path", "baomi-collector.service"):
        r = subprocess.run(["systemd-analyze", "verify", f"--root={root}", f"/lib/systemd/system/{unit}"],
                           capture_output=True, text=True)
        assert r.returncode == 0, f"{unit}: {r.stderr}"
        if unit.endswith(".service"):
            r = subprocess.run(["systemd-analyze", "security", "--offline=true", f"--root={root}",
                                f"/lib/systemd/system/{unit}"], capture_output=True, text=True)
            last = r.stdout.strip().splitlines()[-1]
            exposure[unit] = float(last.split("level for", 1)[1].split(":", 1)[1].split()[0])
    assert exposure["baomi-collector.service"] < 2.0     # "OK" or better
    assert exposure["baomi-agent.service"] < 7.0         # root by necessity; 9.6 with no hardening
    return exposure


def _bumped(deb: Path, version: str, out: Path) -> Path:
    """The same package rebuilt with a higher version: what an upgrade installs."""
    tree = out / f"{deb.stem}-tree"
    subprocess.run(["dpkg-deb", "-R", str(deb), str(tree)], check=True)
    control = tree / "DEBIAN" / "control"
    control.write_text("".join(f"Version: {version}\n" if l.startswith("Version:") else l
                               for l in control.read_text().splitlines(keepends=True)))
    new = out / f"{deb.name.split('_')[0]}_{version}_{deb.name.rsplit('_', 1)[1]}"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(tree), str(new)], check=True,
                   capture_output=True)
    shutil.rmtree(tree)
    return new


@pytest.fixture(scope="module")
def debs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    need_root()
    need_tools("dpkg-deb", "mmdebstrap", "chroot")
    built = os.environ.get("BAOMI_DEB_DIR")
    if built:
        dist = Path(built)
    else:
        r = subprocess.run([str(REPO / "packaging" / "build-deb")], cwd=REPO, capture_output=True, text=True,
                           timeout=1500)
        assert r.returncode == 0, f"packaging/build-deb failed:\n{r.stderr[-3000:]}"
        dist = REPO / "dist"
    found = {n: sorted(dist.glob(f"{n}_*.deb"))[-1] for n in ("baomi-agent", "baomi-collector")}
    return found


@pytest.fixture(scope="module")
def clean_root(tmp_path_factory: pytest.TempPathFactory, debs: dict[str, Path]) -> Path:
    if not _archive_reachable():
        pytest.skip(f"the Debian archive ({ARCHIVE}) cannot be reached: no clean root to install into")
    root = tmp_path_factory.mktemp("debian12") / "root"
    t0 = time.monotonic()
    r = subprocess.run(["mmdebstrap", "--quiet", "--variant=apt", f"--include={','.join(DEPENDS)}", "bookworm",
                        str(root), ARCHIVE], capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, f"mmdebstrap failed:\n{r.stderr[-3000:]}"
    print(f"clean Debian 12 root in {time.monotonic() - t0:.0f} s")
    # from here on the root has no package source: what installs, installs offline
    for sources in [root / "etc/apt/sources.list", *(root / "etc/apt/sources.list.d").glob("*")]:
        sources.unlink()
    return root


def test_debian_packages_install_offline_work_upgrade_remove_and_purge(clean_root: Path, debs: dict[str, Path],
                                                                      tmp_path: Path) -> None:
    report: dict[str, object] = {name: {"size_bytes": deb.stat().st_size} for name, deb in debs.items()}
    for name, deb in debs.items():
        shutil.copy(deb, clean_root / "tmp" / deb.name)
    with Root(clean_root) as root:
        # -- install, with no download at all -------------------------------------------
        t0 = time.monotonic()
        root.run("apt-get", "install", "-y", *(f"/tmp/{d.name}" for d in debs.values()))
        report["install_s"] = round(time.monotonic() - t0, 1)
        report["exposure"] = _check_units(clean_root)
        for cmd in ("baomi-agent", "baomi-collector", "baomi-session"):
            assert (clean_root / "usr/bin" / cmd).exists(), cmd
        assert root.run("baomi-session", "--help", check=False).returncode == 0
        # the collector's libraries are not in the agent's package and the other way round
        agent_libs = " ".join(os.listdir(next((clean_root / "opt/baomi-agent/venv/lib").glob("python3*"))
                                         / "site-packages"))
        collector_libs = " ".join(os.listdir(next((clean_root / "opt/baomi-collector/venv/lib").glob("python3*"))
                                             / "site-packages"))
        for lib in ("fastapi", "uvicorn", "psycopg"):
            assert lib not in agent_libs, lib
        for lib in ("pyudev", "hyperscan", "pypdfium2", "pyfuse3"):
            assert lib not in collector_libs, lib

        # -- the agent scans ---------------------------------------------------------------
        (clean_root / "tmp/通知.txt").write_text("机密★1年\n关于采购的通知\n", encoding="utf-8")
        scan = root.run("baomi-agent", "scan", "--json", "/tmp/通知.txt", check=False)
        assert scan.returncode == 1, scan.stderr          # 1: something marked was found
        assert json.loads(scan.stdout.splitlines()[0])["level"] == "secret", scan.stdout   # 机密
        scan_user = root.run("getent", "passwd", "baomi-scan").stdout.split(":")   # its workers' user
        assert scan_user[2] != "0" and scan_user[6].strip().endswith("nologin"), scan_user

        # -- the collector: migrations, serve, a token ------------------------------------
        port = _free_port()
        conf = clean_root / "etc/baomi/collector.toml"
        conf.write_text(conf.read_text().replace('listen = "0.0.0.0:8443"', f'listen = "127.0.0.1:{port}"'))
        as_collector = ("runuser", "-u", "baomi-collector", "--", "baomi-collector")
        root.run(*as_collector, "db", "upgrade", "--config", "/etc/baomi/collector.toml")
        collector = root.popen(*as_collector, "serve", "--config", "/etc/baomi/collector.toml",
                               log=tmp_path / "collector.log")
        agent = None
        try:
            url = f"https://127.0.0.1:{port}"
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"{url}/api/v1/health", verify=False, timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert collector.poll() is None, (tmp_path / "collector.log").read_text()[-2000:]
                assert time.monotonic() < deadline, "the packaged collector never answered"
                time.sleep(0.5)
            token = root.run(*as_collector, "token", "create", "--host", "pc-01", "--config",
                             "/etc/baomi/collector.toml").stdout.strip()

            # -- the agent's unit: waits for a usable configuration, then enrolls ----------
            unit = clean_root / "lib/systemd/system/baomi-agent.service"
            cond = root.run(*_unit_line(unit, "ExecCondition"), check=False)
            assert cond.returncode == 1 and "[collector] url" in cond.stderr, cond.stderr
            (clean_root / "etc/baomi/agent.d/10-preseed.toml").write_text(
                f'[collector]\nurl = "{url}"\nca = "/etc/baomi/collector.crt"\ntoken = "{token}"\n'
                '[enforce]\ngateway = false\n[screenlock]\nenabled = false\n')
            root.run(*_unit_line(unit, "ExecCondition"))
            agent = root.popen(*_unit_line(unit, "ExecStart"), log=tmp_path / "agent.log")
            deadline = time.monotonic() + 180
            while "pc-01" not in root.run(*as_collector, "agents", "list", "--config", "/etc/baomi/collector.toml",
                                          check=False).stdout:
                assert agent.poll() is None, (tmp_path / "agent.log").read_text()[-3000:]
                assert time.monotonic() < deadline, (tmp_path / "agent.log").read_text()[-3000:]
                time.sleep(2)
            _stop(agent)
            agent = None
        finally:
            if agent is not None:
                _stop(agent)
            _stop(collector)

        # -- upgrade to a rebuilt package: spool, database and local edits kept -----------
        def count(db: str, sql: str) -> int:
            return int(root.run("python3", "-c", f"import sqlite3; print(sqlite3.connect('{db}').execute("
                                f"\"{sql}\").fetchone()[0])").stdout)

        spool, cdb = "/var/lib/baomi/spool.db", "/var/lib/baomi-collector/collector.db"
        before = (count(spool, "SELECT count(*) FROM events"), count(cdb, "SELECT count(*) FROM events"))
        assert before[0] > 0 and before[1] > 0
        bumped = [_bumped(d, "0.1.0+upgrade1", tmp_path) for d in debs.values()]
        for b in bumped:
            shutil.copy(b, clean_root / "tmp" / b.name)
        root.run("apt-get", "install", "-y", *(f"/tmp/{b.name}" for b in bumped))
        assert "0.1.0+upgrade1" in root.run("dpkg-query", "-W", "baomi-agent").stdout
        after = (count(spool, "SELECT count(*) FROM events"), count(cdb, "SELECT count(*) FROM events"))
        assert after == before
        assert f"127.0.0.1:{port}" in conf.read_text()        # a conffile: the local edit survives

        # -- remove keeps state; purge deletes it (not while security events are unsent) -
        root.run("apt-get", "remove", "-y", "baomi-agent", "baomi-collector")
        assert (clean_root / "var/lib/baomi/spool.db").exists()
        assert (clean_root / "var/lib/baomi-collector/collector.db").exists()
        unsent = count(spool, "SELECT count(*) FROM events WHERE acked=0 AND security=1")
        if unsent == 0:
            # a security event the collector never got: the agent started on a bad setting,
            # with the collector down
            root.run("apt-get", "install", "-y", *(f"/tmp/{b.name}" for b in bumped))
            a = root.popen("baomi-agent", "run", "--config", "/etc/baomi/agent.toml",
                           log=tmp_path / "agent2.log", env={"BAOMI_ENFORCE_NICE": "bogus"})
            deadline = time.monotonic() + 120
            while count(spool, "SELECT count(*) FROM events WHERE acked=0 AND security=1") == 0:
                assert a.poll() is None and time.monotonic() < deadline, (tmp_path / "agent2.log").read_text()[-2000:]
                time.sleep(1)
            _stop(a)
            root.run("apt-get", "remove", "-y", "baomi-agent")
        refused = root.run("dpkg", "--purge", "baomi-agent", check=False)
        assert refused.returncode != 0 and "not received" in refused.stderr, refused.stderr
        assert (clean_root / "var/lib/baomi/spool.db").exists()
        root.run("dpkg", "--purge", "baomi-agent", env={"BAOMI_PURGE_FORCE": "1"})
        root.run("dpkg", "--purge", "baomi-collector")
        assert not (clean_root / "var/lib/baomi").exists()
        assert not (clean_root / "var/lib/baomi-collector").exists()
        assert root.run("getent", "passwd", "baomi-collector", check=False).returncode != 0
        assert root.run("getent", "passwd", "baomi-scan", check=False).returncode != 0
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "debian-packages.json").write_text(json.dumps(report, indent=2))
    print("packages:", json.dumps(report))
