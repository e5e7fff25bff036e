"""Heartbeat: every [collector] heartbeat_s an agent.heartbeat event saying the agent is alive.

It carries what the collector's host list shows: agent version, policy
version, central rules version, how many events wait in the spool and how old the oldest one is;
how each medium is enforced, how confined the scan workers run, and on classified hosts a short
posture summary (network, radios, shares).
"""
from __future__ import annotations

import datetime as _dt
import time
from typing import Any

from . import __version__
from .context import AgentContext
from .decide.posture import posture_status
from .scan.sandbox import latest_confinement


def policy_version(ctx: AgentContext) -> str:
    """`central:N` when a signed central document is applied (docs/policy.md); else the
    loaded configuration's identity (config_version)."""
    central = ctx.status.get("policy")
    if central:
        return f"central:{central['version']}"
    return config_version(ctx.config)


def config_version(config: Any) -> str:
    """The loaded configuration's identity: the agent.toml path and its modification time."""
    src = config.source
    if src is None:
        return "builtin"
    try:
        return f"{src}@{int(src.stat().st_mtime)}"
    except OSError:
        return str(src)


def age_s(iso: str | None, now: _dt.datetime | None = None) -> float | None:
    if not iso:
        return None
    then = _dt.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=_dt.timezone.utc)
    now = now or _dt.datetime.now(_dt.timezone.utc)
    return round(max(0.0, (now - then).total_seconds()), 3)


def scan_workers() -> dict[str, Any] | None:
    c = latest_confinement()
    return c.to_json() if c else None


def heartbeat_details(ctx: AgentContext) -> dict[str, Any]:
    return {"version": __version__, "policy_version": policy_version(ctx),
            "policy_applied_at": (ctx.status.get("policy") or {}).get("applied_at"),
            "spool_depth": ctx.spool.depth(),
            # the central rules version this host runs (0: none; agent/central.py CentralRules)
            "rules_version": (ctx.status.get("rules") or {}).get("version", 0),
            # the highest approval decision this host holds (agent/approvals.py)
            "approvals_seq": ctx.status.get("approvals_seq", 0),
            # the central media registry version this host holds (agent/media/central.py)
            "media_registry_version": (ctx.status.get("media_registry") or {}).get("version", 0),
            "oldest_unsent_age_s": age_s(ctx.spool.oldest_unacked_time()),
            # how each medium is enforced now: "held" (the gateway) or "after_write"
            "enforcement": dict(ctx.status.get("enforcement") or {}),
            # how the scan workers parse documents: "confined" / "partial" (with the refused
            # steps) / "root" (agent/scan/sandbox.py); None until the first worker started
            "scan_workers": scan_workers(),
            # classified hosts: network isolated or not, radios, shares (docs/posture.md); else None
            "posture": posture_status(ctx.status.get("posture"), time.time())}


def beat(ctx: AgentContext) -> dict[str, Any]:
    return ctx.record("agent.heartbeat", details=heartbeat_details(ctx))
