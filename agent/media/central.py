"""The central media registry on the agent (docs/media.md "集中登记"): the security
administrator's signed registry document, fetched, verified, kept and handed to the media
component, which merges it with media.toml (registry.merge_central).

- Each answer of the collector to a batch names the latest registry version
  (`media_registry_version`). When it is not the one held, the agent fetches
  GET /api/v1/media-registry (with the ETag of what it judged last) and judges it with
  the same key as the central policy ([central] public_key): `media.registry_applied`,
  or `policy.forged` / `policy.rollback_refused` with `details.document = "media_registry"`.
- A verified document is kept in `state_dir/central-media-registry.json` and verified
  again the first time the registry is used after a start: a host that reboots offline
  uses the registrations and revocations it last accepted.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from baomi.common import media_registry as rules
from baomi.common.events import utcnow

from ..central import SignedDocument, read_kept
from ..context import AgentContext

log = logging.getLogger(__name__)
STORE = "central-media-registry.json"
TOPIC = "media.registry"       # bus topic: a new central registry document is held
DOCUMENT = "media_registry"    # details.document of policy.forged / policy.rollback_refused
_MAKE = threading.Lock()


class CentralRegistry(SignedDocument):
    URL = "/api/v1/media-registry"
    STORE = STORE
    NAME = DOCUMENT
    check = staticmethod(rules.verify)

    def __init__(self, ctx: AgentContext):
        super().__init__(ctx)   # the central policy's key: one signer, one key
        self.document: dict[str, Any] | None = None

    def _apply(self, doc: dict[str, Any], env: dict[str, Any], source: str) -> None:
        before, self.document = self.document, doc
        self.running, self.signature = doc["version"], env["signature"]
        applied_at = utcnow()
        self.ctx.status["media_registry"] = {"version": self.running, "applied_at": applied_at}
        log.info("central media registry version %d applied (%s)", self.running, source)
        self.ctx.record("media.registry_applied", details={
            "version": self.running, "issued_at": doc.get("issued_at"), "source": source, "applied_at": applied_at,
            "registered": len(doc["media"]), "revoked": len(doc["revoked"]), "changes": rules.changes(before, doc)})
        self.ctx.bus.publish(TOPIC, self.running)   # the media component judges attached media again


def kept_document(config: Any) -> dict[str, Any] | None:
    """The kept central registry document if it verifies (for `media list`, which runs
    without the daemon and records nothing); None otherwise."""
    path = Path(config.state_dir) / STORE
    if config.central.public_key is None or not path.exists():
        return None
    from .registry import load_public_key
    try:
        key = load_public_key(config.central.public_key)
    except Exception:
        return None
    j = rules.judge(read_kept(path), key, 0)
    return j.document if j.outcome == "apply" else None


def registry_of(ctx: AgentContext) -> CentralRegistry:
    """The context's central registry, made (and its kept copy loaded) on first use."""
    with _MAKE:
        reg = getattr(ctx, "central_media", None)
        if reg is None:
            reg = CentralRegistry(ctx)
            reg.load_stored()
            ctx.central_media = reg  # type: ignore[attr-defined]
    return reg
