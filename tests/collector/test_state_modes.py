"""Every collector state file and folder is private (0600/0700) whatever the
umask: the SQLite database with its -wal/-shm files and the state folder."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.collector import REPO, Collector, SigningAgent

pytestmark = pytest.mark.timeout(120)


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_state_files_are_private_under_umask_022(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        c = Collector(tmp_path / "c")
        with c:  # serve, and the CLI (token create) both open the store
            a = SigningAgent(c.url)
            assert a.enroll(c.token()).status_code == 200
            assert a.send([a.event()]).status_code == 200
            state = c.folder / "state"
            files = sorted(p for p in state.rglob("*"))
            assert {p.name for p in files} >= {"collector.db", "collector.db-wal", "collector.db-shm"}
            assert mode(state) == 0o700, oct(mode(state))
            for p in files:
                assert mode(p) == (0o700 if p.is_dir() else 0o600), (p, oct(mode(p)))
    finally:
        os.umask(old)


def test_db_upgrade_creates_a_private_database(tmp_path: Path) -> None:
    db_path = tmp_path / "new" / "x.db"
    code = ("import os; os.umask(0o022); from baomi.service import db; "
            f"db.upgrade('sqlite:///{db_path}'); e = db.make_engine('sqlite:///{db_path}'); "
            "e.connect().close()")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
    assert mode(db_path.parent) == 0o700
    for p in db_path.parent.iterdir():
        assert mode(p) == 0o600, (p, oct(mode(p)))
