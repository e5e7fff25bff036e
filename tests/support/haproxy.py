"""A real haproxy (Debian's) in front of collector processes: its own config on a free
loopback port, run in the foreground by the test (never the system haproxy service)."""
from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import httpx

from tests.support.collector import free_port

CONFIG = """\
global
    maxconn 512

defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    # a connection refused by a dead collector is tried again on another one; a request
    # that reached a collector is never replayed by haproxy (the agent resends it)
    retries 3
    option redispatch

frontend agents
    bind 127.0.0.1:{port}
    default_backend collectors

backend collectors
    balance roundrobin
    option httpchk GET /api/v1/health
    http-check expect status 200
    default-server inter 300ms fall 2 rise 2
{servers}
"""


def haproxy_binary() -> str | None:
    return shutil.which("haproxy") or next((p for p in ("/usr/sbin/haproxy",) if Path(p).exists()), None)


class HAProxy:
    """Round-robin over `backends` (host:port); url is the front end's address."""

    def __init__(self, folder: Path, backends: list[str]) -> None:
        binary = haproxy_binary()
        if binary is None:
            raise RuntimeError("haproxy not installed (scripts/setup installs it)")
        self.binary, self.folder = binary, Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        servers = "\n".join(f"    server c{i} {b} check" for i, b in enumerate(backends, 1))
        self.config = self.folder / "haproxy.cfg"
        self.config.write_text(CONFIG.format(port=self.port, servers=servers))
        self.log = self.folder / "haproxy.log"
        self.proc: subprocess.Popen | None = None

    def start(self, wait: float = 30.0) -> "HAProxy":
        subprocess.run([self.binary, "-c", "-q", "-f", str(self.config)], check=True, capture_output=True)
        with open(self.log, "ab") as logf:
            self.proc = subprocess.Popen([self.binary, "-db", "-f", str(self.config)], stdout=logf,
                                         stderr=subprocess.STDOUT)
        end = time.monotonic() + wait
        while time.monotonic() < end:  # up once the health checks let a request through
            if self.proc.poll() is not None:
                raise AssertionError(f"haproxy exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"haproxy did not come up: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> "HAProxy":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
