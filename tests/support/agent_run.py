"""`baomi-agent run` as a real subprocess enforcing loop media, for the end-to-end tests.

The config is the smallest that enforces: no collector, no screen lock, one scanning
job, the media component told about the test's own loop devices only, and the
gateway's runtime folder inside the test's temporary folder. Events are read from the
agent's spool: `events()` opens it read-only (cheap enough to poll), `cli_events()`
runs `baomi-agent events --json` the way an administrator reads them."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Iterable

from baomi.agent import quarantine as q

from .enforce_harness import wait_for
from .media import LoopMedium

REPO = Path(__file__).resolve().parents[2]
AGENT = [sys.executable, "-m", "baomi.agent.cli"]
COPY_KINDS = ("file.copied", "file.blocked", "file.uninspectable")


def media_component_available() -> str:
    """'' when `baomi-agent run` can find media here, else why not."""
    try:
        import baomi.agent.media.component  # noqa: F401
        return ""
    except ImportError as exc:
        return f"media component not available ({exc})"


def gateway_unavailable() -> str:
    """'' when the staging gateway can run here, else why not."""
    try:
        from baomi.agent.gateway import available
    except ImportError as exc:
        return f"gateway not importable ({exc})"
    ok, why = available()
    return "" if ok else why


class AgentRun:
    """One agent (config, state, quarantine keys) that can be started, stopped and
    SIGKILLed again and again; `media` are the loop media it is told about."""

    def __init__(self, tmp: Path, media: Iterable[LoopMedium], mode: str = "held",
                 log_path: Path | None = None, extra_toml: str = "", host_name: str = "e2e-pc",
                 host_class: str = "unclassified"):
        self.tmp = Path(tmp)
        self.media = list(media)
        self.mode = mode
        self.priv, self.pub = q.keygen(self.tmp / "keys")
        self.state = self.tmp / "state"
        self.gateway_root = self.tmp / "gw"
        self.conf = self.tmp / "agent.toml"
        names = ", ".join(f'"{Path(m.devnode).name}"' for m in self.media)
        self.request_socket = self.tmp / "request.sock"   # not /run/baomi: runs side by side
        if "[approvals]" not in extra_toml:
            extra_toml += f'\n[approvals]\nsocket = "{self.request_socket}"\n'
        self.conf.write_text(f"""
[host]
class = "{host_class}"
name = "{host_name}"
[paths]
state_dir = "{self.state}"
[media]
extra_removable = [{names}]  # these media only, not every loop device
registry = "{self.tmp / 'media.toml'}"
rescan_s = 1.0
[scan]
rule_dirs = []
jobs = 1
[screenlock]
enabled = false
[quarantine]
public_key = "{self.pub}"
[enforce]
gateway = {"true" if mode == "held" else "false"}
gateway_root = "{self.gateway_root}"
{extra_toml}
""")
        self.log_path = log_path or self.tmp / "agent.log"
        self.proc: subprocess.Popen | None = None
        self.started_at_seq = 0

    # -- the process --------------------------------------------------------------
    def start(self, ready: bool = True, timeout: float = 60) -> "AgentRun":
        """Starts the agent; with `ready`, waits until every medium is in this run's mode
        (an `enforce.mode` event recorded after this start, one per medium)."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.started_at_seq = self.last_seq()
        with open(self.log_path, "a") as log:
            self.proc = subprocess.Popen([*AGENT, "run", "--config", str(self.conf)], cwd=REPO,
                                         stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        if ready:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 60) -> list[dict]:
        def modes() -> list[dict] | None:
            self.check_alive()
            found = {e["medium"]["mountpoint"]: e for e in self.events("enforce.mode", self.started_at_seq)}
            return list(found.values()) if len(found) >= len(self.media) else None
        found = wait_for(modes, timeout, "the agent to enforce its media")
        wrong = [e for e in found if e["details"]["mode"] != self.mode]
        assert not wrong, f"media not in {self.mode} mode: {wrong}"
        return found

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"the agent exited with {self.proc.returncode}: {self.log_tail()}")

    def stop(self, timeout: float = 60) -> int | None:
        """SIGTERM (finishes pending verdicts and commits), SIGKILL if it does not exit."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
                raise AssertionError(f"the agent did not stop within {timeout}s of SIGTERM")
        return self.proc.returncode

    def kill(self, timeout: float = 30) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the agent did not exit within {timeout}s of SIGKILL "
                                 "(a thread of it waits on its own FUSE filesystem?)")

    def log_tail(self, n: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    # -- events -----------------------------------------------------------------------
    def _db(self) -> Path:
        return self.state / "spool.db"

    def events(self, kind: str | None = None, since_seq: int = 0) -> list[dict[str, Any]]:
        """The spool's events, read-only (the agent keeps writing)."""
        if not self._db().exists():
            return []
        db = sqlite3.connect(f"file:{self._db()}?mode=ro", uri=True, timeout=10)
        try:
            sql, args = "SELECT body FROM events WHERE seq > ?", [since_seq]
            if kind:
                sql += " AND (kind = ? OR kind LIKE ?)"
                args += [kind, kind.rstrip(".") + ".%"]
            rows = db.execute(sql + " ORDER BY seq", args).fetchall()
        except sqlite3.OperationalError:      # created but no table yet
            return []
        finally:
            db.close()
        return [json.loads(body) for (body,) in rows]

    def last_seq(self) -> int:
        if not self._db().exists():
            return 0
        db = sqlite3.connect(f"file:{self._db()}?mode=ro", uri=True, timeout=10)
        try:
            return db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
        except sqlite3.OperationalError:
            return 0
        finally:
            db.close()

    def cli_events(self) -> list[dict[str, Any]]:
        """`baomi-agent events --json`: what an administrator reads on the host."""
        out = subprocess.run([*AGENT, "events", "--config", str(self.conf), "--json"], cwd=REPO,
                             capture_output=True, text=True, check=True, timeout=120).stdout
        return [json.loads(line) for line in out.splitlines()]

    def copy_events(self, since_seq: int = 0) -> list[dict[str, Any]]:
        return [e for e in self.events(since_seq=since_seq) if e["kind"] in COPY_KINDS]

    def wait_event(self, pred: Callable[[dict], bool], timeout: float = 30, what: str = "an event",
                   since_seq: int = 0) -> dict:
        def found() -> dict | None:
            return next((e for e in self.events(since_seq=since_seq) if pred(e)), None)
        return wait_for(found, timeout, what)

    # -- the gateway's mounts -----------------------------------------------------------
    def hidden_mounts(self) -> list[str]:
        """The media's real filesystems the gateway hides under its runtime folder."""
        prefix = str(self.gateway_root / "real") + "/"
        return [m for m in mount_points() if m.startswith(prefix)]

    def cleanup_mounts(self) -> None:
        """Lazily unmounts whatever is still mounted below this agent's folders (its
        gateway view and hidden mounts, the media's mount points)."""
        for mp in reversed(mount_points()):
            if mp == str(self.tmp) or mp.startswith(str(self.tmp) + "/"):
                subprocess.run(["umount", "-l", mp], capture_output=True, timeout=30)


def mount_points() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4].replace("\\040", " ") for line in f]


def is_mount(path: Path | str) -> bool:
    return os.path.abspath(path) in mount_points()

