"""PrintComponent: the agent's side of printing. It answers the backend on a root-only
socket, re-checks the CUPS queues every [print] recheck_s (print.unprotected_queue for
one that bypasses the backend, which is then wrapped unless turned off), and records
what the backend decided while the agent was not running."""
from __future__ import annotations

import logging
import socket
import threading
from pathlib import Path
from typing import Any, Callable

from baomi.common.fsutil import private_dir
from ..localsock import LocalServer
from ..enforce.verdicts import Verdicts
from ..screenlock.protocol import peer_credentials
from . import outbox, queues
from .cups import Cups, CupsError, Queue
from .jobs import PrintJobs
from .printers import PrinterRegistry
from .protocol import JobReply, JobRequest, encode, read_line

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 10.0  # a backend sends its request at once; anything slower is not a backend


class PrintServer(LocalServer):
    """Root-only: only cupsd's backends (root) ask; one thread per job (a scan takes long)."""

    def __init__(self, path: Path, handle: Callable[[JobRequest], JobReply], stopping: threading.Event):
        self.handle = handle
        super().__init__(path, self._answer, stopping, 0o600, "baomi-print")

    def _answer(self, conn: socket.socket) -> None:
        if peer_credentials(conn).uid != 0:
            return
        try:
            conn.settimeout(READ_TIMEOUT_S)
            req = JobRequest.from_json(read_line(conn))
            conn.settimeout(None)
            conn.sendall(encode(self.handle(req)))
        except ConnectionError as exc:  # a peer that only checks the socket is served (another agent starting)
            log.debug("print socket: %s", exc)
        except Exception:  # no answer: the backend falls back to the uninspectable cell
            log.exception("print job request failed")


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
