from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from tests.support.collector import Collector

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", "postgresql"])
def collector(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Collector]:
    """A real collector process on SQLite or on a real PostgreSQL."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    c = Collector(tmp_path / "collector", database_url=url)
    try:
        yield c.start()
    finally:
        c.kill()


def agent_config(folder: Path, url: str, token: str | None, extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    cfg = folder / "agent.toml"
    token_line = f'token = "{token}"\n' if token else ""
    cfg.write_text(f'[host]\nname = "测试-PC01"\n[paths]\nstate_dir = "{folder / "state"}"\n'
                   f'[collector]\nurl = "{url}"\n{token_line}batch_size = 200\nheartbeat_s = 3600\n'
                   f'backoff_min_s = 0.05\nbackoff_max_s = 0.3\ntimeout_s = 30\n'
                   f'[screenlock]\nenabled = false\n{extra}')
    return cfg


class Driver:
    """tests/delivery/driver.py as a child process in its own process group."""

    def __init__(self, config: Path, *args: str):
        self.log = config.parent / "driver.log"
        with open(self.log, "ab") as logf:
            self.proc = subprocess.Popen([sys.executable, "-m", "tests.delivery.driver", str(config), *args],
                                         cwd=REPO, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"agent did not finish: {self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@pytest.fixture
def drivers() -> Iterator[list[Driver]]:
    started: list[Driver] = []
    yield started
    for d in started:
        d.kill()


@contextlib.contextmanager
def small_ext4(workdir: Path, size_mb: int = 8) -> Iterator[Path]:
    """A mounted loop ext4 of `size_mb` (released however the test ends)."""
    from tests.support.media import LoopMedium
    workdir.mkdir(parents=True, exist_ok=True)
    with LoopMedium("ext4", size_mb=size_mb, workdir=workdir) as medium:
        yield medium.mount()
