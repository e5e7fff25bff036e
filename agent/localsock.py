"""A local UNIX stream socket the agent serves: one thread accepting, one short-lived
thread per connection. The socket is created with its final mode (no moment where
others could connect to a socket meant for root), and never taken from a running agent."""
from __future__ import annotations

import logging
import os
import socket
import threading
from pathlib import Path
from typing import Callable

from baomi.common.fsutil import private_dir

log = logging.getLogger(__name__)


class LocalServer:
    def __init__(self, path: Path, serve: Callable[[socket.socket], None], stopping: threading.Event,
                 mode: int = 0o600, name: str = "baomi-socket"):
        self.path, self.serve, self.stopping, self.mode, self.name = path, serve, stopping, mode, name
        self.sock: socket.socket | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        private_dir(self.path.parent, 0o755)
        if self.path.exists():
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                try:
                    probe.connect(str(self.path))
                except OSError:
                    self.path.unlink(missing_ok=True)  # left by an agent that died
                else:  # its clients would lose it mid-request
                    raise RuntimeError(f"{self.path} is served by another process (a second agent?)")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o777 & ~self.mode)
        try:
            s.bind(str(self.path))
        finally:
            os.umask(old)
        s.listen(64)
        s.settimeout(0.5)
        self.sock = s
        self.thread = threading.Thread(target=self._accept, name=self.name, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        assert self.sock is not None
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), name=f"{self.name}-conn", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                self.serve(conn)
            except Exception:
                log.exception("%s: a request failed", self.path)

    def stop(self) -> None:
        if self.sock is not None:
            self.sock.close()
        if self.thread is not None:
            self.thread.join(2)
        self.path.unlink(missing_ok=True)
