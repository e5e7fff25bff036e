"""A real collector process (`baomi-collector serve`) on a free loopback port,
with SQLite or a PostgreSQL URL, and a small signing client for tests."""
from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from baomi.common import events as ev
from baomi.agent.agent_key import Identity

REPO = Path(__file__).resolve().parents[2]
COLLECTOR = [sys.executable, "-m", "baomi.service.cli"]


# what a batch answer names when nothing central was published yet
NO_DOCUMENTS = {"policy_version": 0, "media_registry_version": 0, "rules_version": 0}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Collector:
    """collector.toml in `folder`; start()/stop()/kill(); cli(...) runs a sub-command."""

    def __init__(self, folder: Path, database_url: str | None = None, extra: str = "", port: int | None = None,
                 tls: tuple[Path, Path] | None = None):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.config = self.folder / "collector.toml"
        lines = [f'listen = "127.0.0.1:{self.port}"', f'state_dir = "{self.folder / "state"}"']
        if database_url:
            lines.append(f'database_url = "{database_url}"')
        text = "\n".join(lines) + "\n" + extra + "\n"
        if tls:
            text += f'[tls]\ncert = "{tls[0]}"\nkey = "{tls[1]}"\n'
        self.config.write_text(text)
        self.scheme = "https" if tls else "http"
        self.url = f"{self.scheme}://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log = self.folder / "collector.log"

    def cli(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        r = subprocess.run([*COLLECTOR, *args, "--config", str(self.config)], capture_output=True, text=True,
                           input=input, timeout=120, cwd=REPO)
        if check and r.returncode != 0:
            raise AssertionError(f"baomi-collector {' '.join(args)} failed: {r.stderr}")
        return r

    def token(self, ttl: int | None = None, *extra: str) -> str:
        args = ["token", "create"] + (["--ttl", str(ttl)] if ttl else []) + list(extra)
        return self.cli(*args).stdout.strip()

    def start(self, wait: float = 60.0, verify: Any = False) -> "Collector":
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen([*COLLECTOR, "serve", "--config", str(self.config)], stdout=logf,
                                     stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True)
        logf.close()
        end = time.monotonic() + wait
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError(f"collector exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=1, verify=verify).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"collector did not come up: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def stored(self, agent_id: str | None = None, kind: str | None = None) -> list[dict[str, Any]]:
        args = ["events", "--json"] + (["--agent", agent_id] if agent_id else []) + (["--kind", kind] if kind else [])
        return [json.loads(l) for l in self.cli(*args).stdout.splitlines()]

    def __enter__(self) -> "Collector":
        # `with Collector(...).start(verify=...) as c` must not start a second server
        return self if self.proc is not None and self.proc.poll() is None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class SigningAgent:
    """An enrolled agent identity that builds, chains and signs batches by hand."""

    def __init__(self, url: str, identity: Identity | None = None, verify: Any = False):
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        self.identity = identity or Identity(Ed25519PrivateKey.generate())
        self.url, self.verify = url, verify
        self.seq, self.last_hash, self.batch = 0, "", 0

    @property
    def agent_id(self) -> str:
        return self.identity.agent_id

    def enroll(self, token: str, name: str = "测试-PC01") -> httpx.Response:
        return httpx.post(f"{self.url}/api/v1/enroll", verify=self.verify, timeout=30, json={
            "token": token, "public_key": base64.b64encode(self.identity.public).decode(),
            "agent_id": self.agent_id, "host": {"name": name, "class": "unclassified"}, "version": "test"})

    def event(self, kind: str = "file.copied", **fields: Any) -> dict[str, Any]:
        self.seq += 1
        e = ev.make_event(kind, host={"id": self.agent_id, "name": "测试-PC01", "class": "unclassified"},
                          user={"uid": 1000, "name": "zhangwei", "session": "3"}, **fields)
        e.update(seq=self.seq, agent_id=self.agent_id, prev_hash=self.last_hash)
        e["hash"] = ev.event_hash(e)
        self.last_hash = e["hash"]
        return e

    def body(self, events: list[dict[str, Any]], batch: int | None = None) -> bytes:
        if batch is None:
            self.batch += 1
            batch = self.batch
        return json.dumps({"agent_id": self.agent_id, "batch": batch, "sent_at": ev.utcnow(), "events": events},
                          ensure_ascii=False).encode()

    def post(self, raw: bytes, sign_with: Identity | None = None, agent_header: str | None = None) -> httpx.Response:
        sig = base64.b64encode((sign_with or self.identity).sign(raw)).decode()
        return httpx.post(f"{self.url}/api/v1/events", content=raw, verify=self.verify, timeout=60, headers={
            "Content-Type": "application/json", "X-Baomi-Agent": agent_header or self.agent_id,
            "X-Baomi-Signature": sig})

    def send(self, events: list[dict[str, Any]]) -> httpx.Response:
        return self.post(self.body(events))
