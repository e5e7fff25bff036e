"""The backend ↔ agent exchange: one JSON line each way over the agent's socket.

The socket is root's alone (mode 0600) and the agent checks the peer's uid with
SO_PEERCRED: only cupsd's backends (run as root) ask, and a reply is trusted because
only the agent can be listening there."""
from __future__ import annotations

import json
import socket
from dataclasses import asdict, dataclass, field
from typing import Any

MAX_LINE = 1024 * 1024
VERSION = 1


@dataclass
class JobRequest:
    job_id: int
    user: str
    title: str
    copies: int
    printer: str
    device_uri: str                 # the original URI (baomi: prefix removed)
    make_model: str
    documents: list[str]            # the job's spool files, as submitted
    data: str                       # what would go to the printer (the spool file, or stdin buffered)
    content_type: str = ""
    final_content_type: str = ""
    v: int = VERSION

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> "JobRequest":
        known = {k: obj[k] for k in cls.__dataclass_fields__ if k in obj}
        return cls(**known)


@dataclass
class JobReply:
    action: str
    forward: bool
    data: str = ""                  # what to send to the printer (a stamped copy, or the request's data)
    message: str = ""               # for CUPS's job state, when blocked
    level: str = "public"
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> "JobReply":
        return cls(**{k: obj[k] for k in cls.__dataclass_fields__ if k in obj})


def encode(obj: Any) -> bytes:
    return json.dumps(asdict(obj), ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


def read_line(sock: socket.socket) -> dict[str, Any]:
    buf = bytearray()
    while not buf.endswith(b"\n"):
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed before a whole message")
        buf += chunk
        if len(buf) > MAX_LINE:
            raise ValueError("message too long")
    obj = json.loads(bytes(buf))
    if not isinstance(obj, dict):
        raise ValueError("message is not a JSON object")
    return obj


def ask(path: str, request: JobRequest, timeout_s: float) -> JobReply:
    """Send a job to the agent and wait for its verdict; OSError/ValueError when there is none."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout_s)
        s.connect(path)
        s.sendall(encode(request))
        return JobReply.from_json(read_line(s))
