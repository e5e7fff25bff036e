"""Starting a scan worker process (agent/scan/worker.py), before its settings are known.

A worker loads its libraries first and only then waits for its settings, so a command
that starts one before it reads its configuration and rules (`baomi-agent scan`) has
the two done side by side. Kept apart from the engine, with nothing heavy to import,
so a command can call it first thing."""
from __future__ import annotations

import socket
import subprocess
import sys
from dataclasses import dataclass

WORKER_MODULE = "baomi.agent.scan.worker"


@dataclass
class Started:
    """A worker process and the parent's end of its socket, not yet given settings."""
    proc: subprocess.Popen[bytes]
    sock: socket.socket
    taken: bool = False

    def take(self) -> socket.socket:
        """The socket, for the one who now owns the process."""
        self.taken = True
        return self.sock

    def discard(self) -> None:
        """Stops it unless it was taken; safe to call more than once."""
        if self.taken:
            return
        self.taken = True
        self.sock.close()
        try:
            self.proc.kill()
            self.proc.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            pass


def start_worker() -> Started:
    """A fresh interpreter (`python -m baomi.agent.scan.worker FD`), not a fork of the
    multi-threaded caller, in a session of its own, over a socket pair."""
    parent, child = socket.socketpair()
    try:
        proc = subprocess.Popen([sys.executable, "-m", WORKER_MODULE, str(child.fileno())],
                                pass_fds=(child.fileno(),), stdin=subprocess.DEVNULL,
                                close_fds=True, start_new_session=True)
    except BaseException:
        parent.close()
        raise
    finally:
        child.close()
    return Started(proc, parent)


def start_workers(n: int) -> list[Started]:
    """n workers started now, for a Scanner(prestarted=...) to take."""
    return [start_worker() for _ in range(max(0, n))]
