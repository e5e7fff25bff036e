"""Enrollment: present a one-time token and this host's public key to the collector.

Afterwards the agent authenticates with its key alone. The outcome is kept in
the spool's meta table ("enrolled" = the collector URL and time), so an agent
enrolls once, not on every start.
"""
from __future__ import annotations

import base64
import sqlite3
import ssl
from pathlib import Path
from typing import Any

import httpx

from . import __version__
from .config import CollectorSection
from baomi.common.events import utcnow
from .agent_key import Identity
from .spool import Spool

ENROLLED_KEY = "enrolled"


class EnrollError(Exception):
    """Enrollment failed; the message says why in words an administrator can act on."""

    def __init__(self, message: str, retry: bool = False):
        super().__init__(message)
        self.retry = retry  # True for a temporary failure (collector down, 5xx)


def http_client(cfg: CollectorSection) -> httpx.Client:
    """An HTTPS client that trusts [collector] ca (or the system CAs when unset)."""
    verify: Any = True
    if cfg.ca is not None:
        if not cfg.ca.is_file():
            raise EnrollError(f"[collector] ca {cfg.ca}: no such file")
        verify = ssl.create_default_context(cafile=str(cfg.ca))
    return httpx.Client(base_url=cfg.url.rstrip("/"), verify=verify, timeout=cfg.timeout_s)


def is_enrolled(spool: Spool, url: str | None) -> bool:
    return bool(url) and spool.get_meta(ENROLLED_KEY).split(" ", 1)[0] == url


def enrolled_with(state_dir: Path, url: str | None) -> bool:
    """Whether the spool in state_dir says this agent enrolled with url, read without
    creating or changing anything (for `config ready`, before the agent runs)."""
    db = Path(state_dir) / "spool.db"
    if not url or not db.is_file():
        return False
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            row = conn.execute("SELECT value FROM meta WHERE key=?", (ENROLLED_KEY,)).fetchone()
    except sqlite3.Error:
        return False
    return row is not None and row[0].split(" ", 1)[0] == url


def describe_transport_error(exc: Exception, url: str) -> str:
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text or isinstance(exc, ssl.SSLCertVerificationError):
        return (f"the collector at {url} presented a certificate not signed by the CA in "
                f"[collector] ca ({text})")
    if isinstance(exc, httpx.ConnectError):
        return f"collector unreachable at {url}: {text or type(exc).__name__}"
    if isinstance(exc, httpx.TimeoutException):
        return f"collector at {url} did not answer in time"
    return f"cannot talk to the collector at {url}: {type(exc).__name__}: {text}"


def enroll(cfg: CollectorSection, identity: Identity, spool: Spool, host: dict[str, Any],
           token: str | None = None, client: httpx.Client | None = None) -> dict[str, Any]:
    """POST /api/v1/enroll; on success remember it in the spool and return the answer."""
    token = token or cfg.token
    if not cfg.url:
        raise EnrollError("no collector configured: set [collector] url in agent.toml")
    if not token:
        raise EnrollError("no enrollment token: pass --token or set [collector] token "
                          "(create one with `baomi-collector token create`)")
    body = {"token": token, "public_key": base64.b64encode(identity.public).decode("ascii"),
            "agent_id": identity.agent_id,
            "host": {"name": host.get("name") or "", "class": host.get("class") or ""},
            "version": __version__}
    own = client is None
    client = client or http_client(cfg)
    try:
        resp = client.post("/api/v1/enroll", json=body)
    except httpx.HTTPError as exc:
        raise EnrollError(describe_transport_error(exc, cfg.url), retry=True) from exc
    finally:
        if own:
            client.close()
    reason = _error_text(resp)
    if resp.status_code == 401:
        raise EnrollError(f"enrollment token rejected by the collector (unknown, expired or already used): {reason}")
    if resp.status_code == 409:
        raise EnrollError(f"the collector already knows agent {identity.agent_id} with another key: {reason}")
    if resp.status_code >= 500:
        raise EnrollError(f"collector error {resp.status_code}: {reason}", retry=True)
    if resp.status_code != 200:
        raise EnrollError(f"enrollment refused ({resp.status_code}): {reason}")
    answer = resp.json()
    if answer.get("agent_id") != identity.agent_id:
        raise EnrollError(f"collector answered for agent {answer.get('agent_id')!r}, not {identity.agent_id}")
    spool.set_meta(ENROLLED_KEY, f"{cfg.url} {answer.get('enrolled_at') or utcnow()}")
    spool.record("agent.enrolled", details={"collector": cfg.url, "enrolled_at": answer.get("enrolled_at")})
    return answer


def _error_text(resp: httpx.Response) -> str:
    try:
        return str(resp.json().get("error") or resp.text)
    except Exception:
        return resp.text[:200]
