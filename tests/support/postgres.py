"""A real, throwaway PostgreSQL server for tests (initdb in a temp dir, loopback only)."""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def find_bindir() -> Path | None:
    for pg_ctl in sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True):
        return Path(pg_ctl).parent
    found = shutil.which("pg_ctl")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """Start with start(); `url` is a SQLAlchemy URL for database `baomi`; stop() removes it all."""

    def __init__(self) -> None:
        self.bindir = find_bindir()
        if self.bindir is None:
            raise RuntimeError("PostgreSQL server binaries not found (apt-get install postgresql)")
        self.dir = Path(tempfile.mkdtemp(prefix="baomi-pg-"))
        self.port = _free_port()
        self.user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
            self._as_user = ["runuser", "-u", "postgres", "--"]

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/baomi"

    def _run(self, *cmd: str) -> None:
        subprocess.run([*self._as_user, *cmd], check=True, capture_output=True)

    def start(self) -> "PostgresServer":
        data = self.dir / "data"
        self._run(str(self.bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", self.user, "-E", "UTF8")
        self._run(str(self.bindir / "pg_ctl"), "-D", str(data), "-l", str(self.dir / "log"), "-w", "-o",
                  f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=on "
                  f"-c max_connections=200", "start")
        deadline = time.time() + 30
        while True:
            try:
                self._run(str(self.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                          "-U", self.user, "baomi")
                break
            except subprocess.CalledProcessError:
                if time.time() > deadline:
                    raise
                time.sleep(0.3)
        return self

    def reset(self) -> None:
        """Drop and recreate the database, for a clean slate between tests."""
        args = ["-h", "127.0.0.1", "-p", str(self.port), "-U", self.user]
        self._run(str(self.bindir / "dropdb"), *args, "--force", "baomi")
        self._run(str(self.bindir / "createdb"), *args, "baomi")

    def stop(self) -> None:
        subprocess.run([*self._as_user, str(self.bindir / "pg_ctl"), "-D", str(self.dir / "data"),
                        "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)
