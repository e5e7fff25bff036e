"""An enforcement component running on a real loop medium, for the integration tests."""
from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from baomi.agent import quarantine as q
from baomi.agent.config import AgentConfig
from baomi.agent.context import open_context
from baomi.agent.messages import MountedMedium

from .media import LoopMedium

REPO = Path(__file__).resolve().parents[2]


def real_scanner(cfg: AgentConfig) -> Any:
    try:
        from baomi.agent.enforce.component import make_scanner
        return make_scanner(cfg)
    except ImportError as exc:
        pytest.skip(f"content scanner not available ({exc})")


def wait_for(cond: Callable[[], Any], timeout: float = 30.0, what: str = "condition",
             interval: float = 0.05) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = cond()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


class Rig:
    """LoopMedium + AgentContext + EnforceComponent; `medium` is what the media component would publish."""

    def __init__(self, fstype: str, size_mb: int = 128, scanner_wrap: Callable[[Any], Any] | None = None,
                 medium_class: str = "personal", inventory: bool = True):
        from baomi.agent.enforce.component import EnforceComponent
        self.tmp = Path(tempfile.mkdtemp(prefix="baomi-enforce-"))
        self.loop = LoopMedium(fstype, size_mb=size_mb, workdir=self.tmp)
        self.priv, self.pub = q.keygen(self.tmp / "keys")
        self.cfg = AgentConfig()
        self.cfg.paths.state_dir = self.tmp / "state"
        self.cfg.quarantine.public_key = self.pub
        self.cfg.scan.rule_dirs = []
        self.cfg.enforce.gateway = False  # in-process: this rig tests after-write mode (tests/gateway hold)
        self.ctx = open_context(self.cfg)
        scanner = real_scanner(self.cfg)
        self.scanner = scanner
        self.comp = EnforceComponent(self.ctx, scanner=scanner_wrap(scanner) if scanner_wrap else scanner,
                                     inventory=inventory)
        self.medium_class = medium_class
        self.started = False

    def __enter__(self) -> "Rig":
        if self.loop.devnode is None:
            self.loop.attach()
        self.mp = self.loop.mount()
        self.comp.start()
        self.started = True
        self.medium = MountedMedium(key=f"{self.loop.devnode}:{self.loop.fs_uuid}", devnode=self.loop.devnode,
                                    mountpoint=self.mp, read_only=False, medium_class=self.medium_class,
                                    level_ceiling=None,
                                    identity={"devnode": self.loop.devnode, "fs_uuid": self.loop.fs_uuid,
                                              "fs_type": self.loop.fstype, "class": self.medium_class})
        self.ctx.bus.publish("medium.mounted", self.medium)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self.started:
                self.comp.stop()
                if hasattr(self.scanner, "close"):
                    self.scanner.close()
        finally:
            self.loop.detach()
            self.ctx.spool.close()

    def settle(self, timeout: float = 60.0) -> None:
        time.sleep(0.3)  # let the last fanotify events reach the queue
        assert self.comp.pipeline.wait_idle(timeout), "enforcement did not finish"

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        return list(self.ctx.spool.iter_events(0, kind))

    def copy_events(self) -> list[dict[str, Any]]:
        return [e for e in self.events() if e["kind"] in ("file.copied", "file.blocked", "file.uninspectable")]

    def decrypt(self, entry_id: str) -> bytes:
        import io
        out = io.BytesIO()
        self.comp.quarantine.decrypt(entry_id, q.load_private_key(self.priv), out)
        return out.getvalue()


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


_CHILD_WRITER = r"""
import base64, json, os, sys
for path, data in json.load(sys.stdin):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(base64.b64decode(data))
"""


def write_from_child(files: dict[Path, bytes]) -> int:
    """Writes `files` from a process of its own and returns its pid. An in-process agent
    forks scanner workers (fork+exec); a worker forked while this process has a file open
    for writing holds it until exec, and the kernel names whoever closes last."""
    payload = json.dumps([[str(p), base64.b64encode(d).decode()] for p, d in files.items()])
    proc = subprocess.Popen([sys.executable, "-c", _CHILD_WRITER], stdin=subprocess.PIPE)
    proc.communicate(payload.encode(), timeout=60)
    assert proc.returncode == 0, f"the writer process exited with {proc.returncode}"
    return proc.pid


# The agent as its own process: the enforcement component with the real scanner,
# handed the medium the way the media component publishes it.
RUNNER = r"""
import json, signal, sys, threading
from pathlib import Path
from baomi.agent import config as C
from baomi.agent.context import open_context
from baomi.agent.messages import MountedMedium
from baomi.agent.enforce.component import EnforceComponent
cfg = C.load(sys.argv[1])
m = json.loads(sys.argv[2])
ctx = open_context(cfg)
signal.signal(signal.SIGTERM, lambda *a: ctx.stopping.set())
comp = EnforceComponent(ctx, inventory=False)
comp.start()
ctx.bus.publish("medium.mounted", MountedMedium(**dict(m, mountpoint=Path(m["mountpoint"]))))
print("ready", flush=True)
ctx.stopping.wait()
comp.stop()
ctx.spool.close()
"""


class AgentProcess:
    def __init__(self, conf: Path, medium: dict, env: dict | None = None):
        self.proc = subprocess.Popen([sys.executable, "-c", RUNNER, str(conf), json.dumps(medium)],
                                     cwd=REPO, env=dict(os.environ, **(env or {})),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            self.proc.kill()
            raise AssertionError(f"agent did not start: {self.proc.stderr.read()[-2000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)
