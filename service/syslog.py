"""A copy of every stored event to a SIEM over syslog: RFC 5424 messages with
octet-counting framing (RFC 6587) over TCP, optionally TLS (RFC 5425). Fed after
commit from a bounded queue by its own thread, so ingest never waits on the
SIEM; the database stays the record and lost forwards are counted and logged."""
from __future__ import annotations

import json
import logging
import queue
import socket
import ssl
import threading
import time
from typing import Any

log = logging.getLogger("baomi.collector.syslog")

PEN = "32473"  # the example enterprise number of RFC 5612; sites may map it in their SIEM
_SEVERITY = {"info": 6, "low": 5, "medium": 4, "high": 3, "critical": 2}
FACILITY = 13  # log audit


def _sd(value: Any) -> str:
    return str("" if value is None else value).replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def format_message(event: dict[str, Any], hostname: str, app_name: str) -> bytes:
    """One RFC 5424 message; structured data carries the facts a SIEM filters on."""
    pri = FACILITY * 8 + _SEVERITY.get(event.get("severity", "info"), 6)
    host = event.get("host") or {}
    user = event.get("user") or {}
    file = event.get("file") or {}
    sd = (f'[baomi@{PEN} id="{_sd(event.get("id"))}" agent="{_sd(event.get("agent_id"))}" '
          f'seq="{_sd(event.get("seq"))}" kind="{_sd(event.get("kind"))}" severity="{_sd(event.get("severity"))}" '
          f'host="{_sd(host.get("name"))}" user="{_sd(user.get("name"))}" level="{_sd(file.get("level"))}" '
          f'action="{_sd(event.get("action"))}" sha256="{_sd(file.get("sha256"))}"]')
    msg = json.dumps(event, ensure_ascii=False, sort_keys=True)
    ts = event.get("time") or "-"
    kind = str(event.get("kind") or "-")[:32]
    return f"<{pri}>1 {ts} {hostname[:255] or '-'} {app_name[:48]} - {kind} {sd} \ufeff{msg}".encode("utf-8")


class Forwarder:
    def __init__(self, host: str, port: int, *, use_tls: bool = False, ca: str | None = None,
                 app_name: str = "baomi", hostname: str | None = None, queue_size: int = 100_000):
        self.host, self.port, self.use_tls, self.ca = host, port, use_tls, ca
        self.app_name = app_name
        self.hostname = hostname or socket.gethostname()
        self.q: queue.Queue[dict[str, Any] | None] = queue.Queue(queue_size)
        self.sent = 0
        self.dropped = 0
        self._sock: socket.socket | None = None
        self._thread = threading.Thread(target=self._run, name="baomi-syslog", daemon=True)
        self._stop = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def stop(self, drain_s: float = 5.0) -> None:
        end = time.monotonic() + drain_s
        while not self.q.empty() and time.monotonic() < end:
            time.sleep(0.05)
        self._stop.set()
        self.q.put(None)
        self._thread.join(drain_s)
        self._close()

    def submit(self, events: list[dict[str, Any]]) -> None:
        for e in events:
            try:
                self.q.put_nowait(e)
            except queue.Full:
                self.dropped += 1
                if self.dropped in (1, 10, 100) or self.dropped % 1000 == 0:
                    log.error("syslog queue full: %d events not forwarded (they are stored)", self.dropped)

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=10)
        if self.use_tls:
            ctx = ssl.create_default_context(cafile=self.ca)
            sock = ctx.wrap_socket(sock, server_hostname=self.host)
        return sock

    def _close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None

    def _run(self) -> None:
        backoff = 0.5
        pending: dict[str, Any] | None = None
        while True:
            if pending is None:
                pending = self.q.get()
                if pending is None:
                    return
            try:
                if self._sock is None:
                    self._sock = self._connect()
                    backoff = 0.5
                msg = format_message(pending, self.hostname, self.app_name)
                self._sock.sendall(str(len(msg)).encode() + b" " + msg)
                self.sent += 1
                pending = None
            except OSError as exc:
                self._close()
                if self._stop.is_set():
                    return
                log.warning("syslog %s:%d unreachable (%s); retrying in %.1f s", self.host, self.port, exc, backoff)
                time.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
