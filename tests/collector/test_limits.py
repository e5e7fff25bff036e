"""Request bodies are capped while they stream in, before any authentication:
a chunked upload without Content-Length is refused past the cap (413) and never
buffered, on the agents' API and on the console's forms alike."""
from __future__ import annotations

import select
import socket
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support.collector import Collector

pytestmark = pytest.mark.timeout(240)

CHUNK = b"x" * 65536


def chunked_post(port: int, path: str, total: int, rss_of: psutil.Process | None = None,
                 content_type: str = "application/json") -> tuple[bytes, int, int]:
    """POST `total` bytes chunked to path; returns (the status line, bytes sent, peak RSS seen)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
              "Transfer-Encoding: chunked\r\n\r\n".encode())
    sent, peak, reply = 0, 0, b""
    frame = f"{len(CHUNK):x}\r\n".encode() + CHUNK + b"\r\n"
    try:
        while sent < total:
            readable, _, _ = select.select([s], [], [], 0)
            if readable:
                break
            s.sendall(frame)
            sent += len(CHUNK)
            if rss_of is not None and sent % (8 * 1024 * 1024) == 0:
                peak = max(peak, rss_of.memory_info().rss)
        else:
            s.sendall(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    try:
        s.settimeout(30)
        while b"\r\n" not in reply:
            data = s.recv(4096)
            if not data:
                break
            reply += data
    except (ConnectionResetError, socket.timeout):
        pass
    s.close()
    if rss_of is not None:
        peak = max(peak, rss_of.memory_info().rss)
    return reply.split(b"\r\n", 1)[0], sent, peak


@pytest.fixture
def collector(tmp_path: Path):
    with Collector(tmp_path / "c", extra="max_batch_bytes = 1048576\nmax_enroll_bytes = 65536\n"
                                         "max_form_bytes = 65536") as c:
        yield c


def test_chunked_body_without_length_gets_413(collector: Collector) -> None:
    proc = psutil.Process(collector.proc.pid)
    base = proc.memory_info().rss
    status, sent, peak = chunked_post(collector.port, "/api/v1/events", 200 * 1024 * 1024, proc)
    assert b"413" in status, status
    assert sent < 64 * 1024 * 1024, f"the collector kept reading {sent} bytes past its 1 MiB cap"
    assert peak - base < 60 * 1024 * 1024, f"RSS grew by {(peak - base) >> 20} MiB"
    assert httpx.get(f"{collector.url}/api/v1/health").status_code == 200


@pytest.mark.parametrize("path,content_type", [
    ("/api/v1/enroll", "application/json"), ("/login", "application/x-www-form-urlencoded"),
    ("/events/1/triage", "application/x-www-form-urlencoded"), ("/tokens", "multipart/form-data; boundary=b"),
    ("/logout", "application/x-www-form-urlencoded")])
def test_every_endpoint_caps_chunked_bodies_with_413(collector: Collector, path: str, content_type: str) -> None:
    status, sent, _ = chunked_post(collector.port, path, 16 * 1024 * 1024, content_type=content_type)
    assert b"413" in status, (path, status)


@pytest.mark.parametrize("path", ["/nowhere", "/login"])
def test_bodies_nobody_reads_are_not_read(collector: Collector, path: str) -> None:
    """An unknown path, or a form post of another type, is answered without reading (so without buffering)."""
    status, sent, _ = chunked_post(collector.port, path, 16 * 1024 * 1024)
    assert status.startswith(b"HTTP/1.1 4"), status
    assert sent < 8 * 1024 * 1024


@pytest.mark.parametrize("path", ["/api/v1/events", "/api/v1/enroll", "/login"])
def test_declared_length_over_cap_gets_413_before_the_body(collector: Collector, path: str) -> None:
    s = socket.create_connection(("127.0.0.1", collector.port), timeout=30)
    s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {10 ** 9}\r\n\r\n".encode())
    assert b" 413 " in s.recv(4096).split(b"\r\n", 1)[0]
    s.close()


def test_bodies_under_the_caps_still_work(collector: Collector) -> None:
    r = httpx.post(f"{collector.url}/api/v1/enroll", content=b"{" + b" " * 60000 + b"}",
                   headers={"Content-Type": "application/json"})
    assert r.status_code == 400   # read whole and judged on its content (no token), not on its size
    r = httpx.get(f"{collector.url}/login")
    assert r.status_code == 200
