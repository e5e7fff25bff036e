"""The helper ↔ daemon socket protocol: one JSON object per line over a UNIX stream socket.

helper → daemon
    {"type": "hello", "version": 1, "uid": 1000, "session": "3", "desktop": "gnome", "pid": 4242}
    {"type": "state", "idle_ms": 12000, "locked": false, "settings": {...}}   (every report_s)
    {"type": "result", "id": 7, "ok": true, "error": null}                    (answer to a request)
daemon → helper
    {"type": "welcome", "report_s": 2.0}  or  {"type": "rejected", "reason": "..."} (then closed)
    {"type": "replaced"}   (a newer helper of the same session took over; the old one exits)
    {"type": "lock", "id": 7}
    {"type": "notify", "id": 8, "summary": "...", "body": "...", "urgency": "normal"}

The daemon trusts nothing the helper claims about itself: uid and session are
checked against the socket's SO_PEERCRED credentials and logind, or the peer's
/proc login session when logind is down (server.py, enforcer.py).
"""
from __future__ import annotations

import json
import socket
import struct
from dataclasses import dataclass
from typing import Any

VERSION = 1
MAX_LINE = 64 * 1024
URGENCIES = ("low", "normal", "critical")


class ProtocolError(ValueError):
    """A line that is not a valid protocol message; the message says what was wrong."""


@dataclass(frozen=True)
class PeerCred:
    pid: int
    uid: int
    gid: int


def peer_credentials(sock: socket.socket) -> PeerCred:
    """The connecting process's pid/uid/gid as the kernel saw them at connect()."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", raw)
    return PeerCred(pid, uid, gid)


def encode(msg: dict[str, Any]) -> bytes:
    return json.dumps(msg, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    if len(line) > MAX_LINE:
        raise ProtocolError(f"line of {len(line)} bytes exceeds {MAX_LINE}")
    try:
        msg = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"not JSON: {exc}") from None
    if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
        raise ProtocolError("a message must be a JSON object with a string 'type'")
    return msg


def check_hello(msg: dict[str, Any]) -> tuple[int, str]:
    """(claimed uid, claimed session id) from a hello, or ProtocolError naming the bad field."""
    if msg.get("type") != "hello":
        raise ProtocolError(f"first message must be 'hello', got {msg.get('type')!r}")
    uid, session = msg.get("uid"), msg.get("session")
    if not isinstance(uid, int) or isinstance(uid, bool) or uid < 0:
        raise ProtocolError(f"hello.uid must be a non-negative integer, got {uid!r}")
    if not isinstance(session, str) or not session or len(session) > 64:
        raise ProtocolError(f"hello.session must be a session id string, got {session!r}")
    return uid, session


class LineReader:
    """Buffers a stream socket into lines."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def read(self) -> list[bytes] | None:
        """Lines completed by one recv(); None at end of stream."""
        data = self.sock.recv(65536)
        if not data:
            return None
        self.buf += data
        lines = self.buf.split(b"\n")
        self.buf = lines.pop()
        if len(self.buf) > MAX_LINE:
            raise ProtocolError(f"line longer than {MAX_LINE} bytes")
        return [ln for ln in lines if ln.strip()]
