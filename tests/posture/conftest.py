"""The posture component in a namespace lab: its config, its process, its spool."""
from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
import tomli_w

from tests.support.netns import PROBE, SITE, SITE6, Lab, lab, wait_for

REPO = Path(__file__).resolve().parents[2]


def write_config(tmp: Path, screenlock: bool = False, **posture: Any) -> Path:
    (tmp / "etc").mkdir(exist_ok=True)
    settings = {"probes": [PROBE], "allowed_networks": [SITE, SITE6], "probe_interval_s": 30.0,
                "probe_timeout_s": 2.0, "check_interval_s": 0.5,
                "nfs_exports": str(tmp / "etc/exports"), "smb_conf": str(tmp / "etc/smb.conf"),
                "passwd_file": str(tmp / "etc/passwd"), "shadow_file": str(tmp / "etc/shadow"),
                # sysfs is not per network namespace: never the host's own radios
                "rfkill_root": str(tmp / "rfkill"), "radio_poll_s": 0.2}
    settings.update(posture)
    for name in ("passwd", "shadow"):
        if not (tmp / "etc" / name).exists():
            (tmp / "etc" / name).write_text("root:x:0:0:root:/root:/bin/bash\n" if name == "passwd"
                                            else "root:!:20000:0:99999:7:::\n")
    cfg = {"host": {"class": "classified", "name": "lab"}, "paths": {"state_dir": str(tmp / "state")},
           "screenlock": {"enabled": screenlock}, "posture": settings,
           # the report reads no kernel log of the machine running the tests
           "check": {"kernel_logs": [], "journalctl": False}}
    path = tmp / "agent.toml"
    path.write_bytes(tomli_w.dumps(cfg).encode())
    return path


def events(config: Path, kind: str | None = None) -> list[dict[str, Any]]:
    db = config.parent / "state/spool.db"
    if not db.exists():
        return []
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        rows = con.execute("SELECT body FROM events ORDER BY seq").fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []  # the agent is still creating its spool
        raise
    finally:
        con.close()
    out = [json.loads(b) for (b,) in rows]
    return [e for e in out if kind is None or e["kind"] == kind]


def wait_event(config: Path, kind: str, timeout_s: float = 30, count: int = 1, **details: Any) -> list[dict]:
    """The events of `kind` whose details include `details`, once there are `count` of them."""
    def match() -> list[dict]:
        got = [e for e in events(config, kind)
               if all((e.get("details") or {}).get(k) == v for k, v in details.items())]
        return got if len(got) >= count else []
    found = wait_for(match, timeout_s)
    assert found, f"no {count}× {kind} {details} within {timeout_s}s; spool holds " + \
        json.dumps([(e["kind"], e.get("details")) for e in events(config)], ensure_ascii=False)[-3000:]
    return found


@pytest.fixture
def netlab() -> Iterator[Lab]:
    with lab() as the:
        yield the


class Agent:
    def __init__(self, the: Lab, config: Path, log: Path) -> None:
        self.config = config
        self._log = open(log, "w")
        self.proc = subprocess.Popen([*the.exec(), sys.executable, "-m", "tests.posture.runner", str(config)],
                                     cwd=REPO, stdout=subprocess.PIPE, stderr=self._log, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        assert line == "READY", f"runner said {line!r}: {log.read_text()[-2000:]}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@pytest.fixture
def start_agent(netlab: Lab, tmp_path: Path):
    agents: list[Agent] = []

    def start(config: Path) -> Agent:
        agents.append(Agent(netlab, config, tmp_path / f"agent{len(agents)}.log"))
        return agents[-1]

    yield start
    for a in agents:
        a.stop()


# a TCP listener on ADDRESS PORT that says when it listens
_LISTEN = ("import socket,sys,time\ns=socket.socket(socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET)\n"
           "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((sys.argv[1], int(sys.argv[2])))\n"
           "s.listen(); print('ready', flush=True); time.sleep(600)\n")


@pytest.fixture
def listen(netlab):
    procs: list[subprocess.Popen] = []

    def start(address: str, port: int) -> subprocess.Popen:
        p = subprocess.Popen([*netlab.exec(), sys.executable, "-c", _LISTEN, address, str(port)],
                             stdout=subprocess.PIPE, text=True)
        procs.append(p)
        assert p.stdout and p.stdout.readline().strip() == "ready"
        return p

    yield start
    for p in procs:
        p.kill()
        p.wait(timeout=10)
