"""PrintComponent: the agent's side of printing. It answers the backend on a root-only
socket, re-checks the CUPS queues every [print] recheck_s (print.unprotected_queue for
one that bypasses the backend, which is then wrapped unless turned off), and records
what the backend decided while the agent was not running."""
from __future__ import annotations

import logging
import os
import socket
import threading
from pathlib import Path
from typing import Any, Callable

from baomi.common.fsutil import private_dir
from ..enforce.verdicts import Verdicts
from ..screenlock.protocol import peer_credentials
from . import outbox, queues
from .cups import Cups, CupsError, Queue
from .jobs import PrintJobs
from .printers import PrinterRegistry
from .protocol import JobReply, JobRequest, encode, read_line

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 10.0  # a backend sends its request at once; anything slower is not a backend


class PrintServer:
    """One thread accepting; one short-lived thread per job (jobs are few and a scan takes long)."""

    def __init__(self, path: Path, handle: Callable[[JobRequest], JobReply], stopping: threading.Event):
        self.path, self.handle, self.stopping = path, handle, stopping
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
                else:  # never take the socket from a running agent: its backends would lose it mid-job
                    raise RuntimeError(f"{self.path} is served by another process (a second agent?)")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            s.bind(str(self.path))  # 0600 from birth: no moment where others could connect
        finally:
            os.umask(old)
        s.listen(64)
        s.settimeout(0.5)
        self.sock = s
        self.thread = threading.Thread(target=self._accept, name="baomi-print", daemon=True)
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
            threading.Thread(target=self._serve, args=(conn,), name="baomi-print-job", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                if peer_credentials(conn).uid != 0:  # only cupsd's root backends ask
                    return
                conn.settimeout(READ_TIMEOUT_S)
                req = JobRequest.from_json(read_line(conn))
                conn.settimeout(None)
                conn.sendall(encode(self.handle(req)))
            except Exception:  # no answer: the backend falls back to the uninspectable cell
                log.exception("print job request failed")

    def stop(self) -> None:
        if self.sock is not None:
            self.sock.close()
        if self.thread is not None:
            self.thread.join(2)
        self.path.unlink(missing_ok=True)


class PrintComponent:
    name = "print"

    def __init__(self, ctx: Any, scanner: Any = None):
        self.ctx = ctx
        self._scanner = scanner
        self._own_scanner = scanner is None
        self.reported: dict[str, str] = {}    # queue -> the bypassing URI already reported
        self.cups = Cups(ctx.config.print.cups_server)
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._checking = threading.Lock()  # the periodic check and one asked for: one at a time

    def start(self) -> None:
        cfg = self.ctx.config
        if not cfg.print.enabled:
            log.info("printing control turned off ([print] enabled = false)")
            return
        if self._scanner is None:
            from ..enforce.component import make_scanner
            self._scanner = make_scanner(cfg)
        work = private_dir(cfg.state_dir / "print" / "jobs")
        self.jobs = PrintJobs(self.ctx, Verdicts(self._scanner), PrinterRegistry.from_config(cfg.print.printer), work,
                              self.cups)
        self.server = PrintServer(cfg.print.socket, self.jobs.judge, self._stopped)
        self.server.start()
        self.drain_outbox()
        self.thread = threading.Thread(target=self._loop, name="baomi-print-queues", daemon=True)
        self.thread.start()
        log.info("print control started (socket %s)", cfg.print.socket)

    def _loop(self) -> None:
        while not (self.ctx.stopping.is_set() or self._stopped.is_set()):
            self.check_queues()
            self.drain_outbox()
            self._wake.wait(self.ctx.config.print.recheck_s)
            self._wake.clear()

    def drain_outbox(self) -> int:
        return outbox.drain(self.ctx.config.state_dir, self.ctx.record)

    def check_queues(self) -> list[Queue]:
        """Report each queue that bypasses the backend (once per URI it bypasses with) and,
        unless [print] wrap_new_queues is off, wrap it."""
        with self._checking:
            return self._check_queues()

    def _check_queues(self) -> list[Queue]:
        cfg = self.ctx.config
        try:
            found = queues.unprotected(self.cups)
        except CupsError as exc:
            log.info("CUPS queues not checked: %s", exc)
            return []
        for q in found:
            covered = False
            if cfg.print.wrap_new_queues:
                try:
                    queues.wrap_queue(self.cups, cfg.state_dir, q)
                    covered = True
                except CupsError as exc:
                    log.warning("queue %s not wrapped: %s", q.name, exc)
            if self.reported.get(q.name) != q.uri or covered:
                self.ctx.record("print.unprotected_queue",
                                details={"queue": q.name, "uri": q.uri, "make_model": q.make_model,
                                         "covered": covered})
                self.reported[q.name] = q.uri
        return found

    def stop(self) -> None:
        if not self.ctx.config.print.enabled:
            return
        self._stopped.set()
        self._wake.set()
        self.server.stop()
        if self._own_scanner and hasattr(self._scanner, "close"):
            self._scanner.close()
