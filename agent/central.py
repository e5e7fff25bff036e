"""Central documents on the agent: verify, keep and apply the security administrator's
signed documents, one SignedDocument subclass each — the policy (docs/policy.md
"Central policy documents"), the rules (docs/rules.md "Central rules") and the media
registry (agent/media/central.py).

- At start (before any component decides anything) the last verified document kept in
  `state_dir/central-policy.json` is verified again and applied: a host that reboots
  offline runs what it last accepted.
- Every answer of the collector to a batch (a heartbeat at least every heartbeat_s)
  names the latest published version. When it differs from the one running, the agent
  fetches GET /api/v1/policy (with the ETag of what it saw last), judges it with
  baomi.common.central.judge and applies, keeps running, or refuses it:
  `policy.applied`, `policy.forged`, `policy.rollback_refused`.
- Applying is one swap of `config.policy.actions` for the effective table: the cells
  this host resolves from the document (its group's over its host class's over all
  hosts', baomi.common.central.resolve, by the host class in agent.toml and this
  agent's own id in the signed membership), except the cells agent.toml locks; every
  decision reads it anew.
"""
from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import httpx

from baomi.common import central as rules
from baomi.common import rulesdoc
from baomi.common.events import utcnow
from baomi.common.fsutil import atomic_write
from baomi.common.tomlconf import ConfigError

from .context import AgentContext

log = logging.getLogger(__name__)
STORE = "central-policy.json"
RULES_STORE = "central-rules.json"   # read by the scanner too (agent/scan/rules.py central_rules)


class SignedDocument:
    """One kind of signed, versioned central document on the agent: verify the kept copy
    at start, fetch a newer one with ETag, judge it (baomi.common.central.judge with the
    type's `check`), store it, apply it (the subclass's `_apply`) or record the refusal.
    Subclasses set URL, STORE, NAME (the document type) and `check`."""
    URL = "/api/v1/policy"
    STORE = STORE
    NAME = "policy"
    check: Any = None      # the document type's verify (None: the policy document's)

    def __init__(self, ctx: AgentContext):
        self.ctx = ctx
        self.path = Path(ctx.config.state_dir) / self.STORE
        self.running = 0
        self.signature = ""
        self.etag = ""          # of the last answer judged (applied, kept or refused)
        self.key = None
        self.key_problem = ""
        self._lock = threading.Lock()
        if ctx.config.central.public_key is not None:
            from .media.registry import load_public_key   # the same PEM loading as the media registry
            try:
                self.key = load_public_key(ctx.config.central.public_key)
            except ConfigError as exc:
                self.key_problem = str(exc)

    def _detail(self) -> dict[str, Any]:
        """What the refusal events say about which document (nothing for the policy: its events are its own)."""
        return {} if self.NAME == "policy" else {"document": self.NAME}

    def _judge(self, env: Any, running: int, signature: str = "") -> Any:
        return rules.judge(env, self.key, running, signature, check=type(self).check)  # type: ignore[arg-type]

    # -- at start ------------------------------------------------------------------
    def load_stored(self) -> None:
        if self.key_problem and self.NAME == "policy":   # said once, not once per document type
            self.ctx.record("agent.config_problem", severity="high",
                            details={"key": "central.public_key", "error": self.key_problem})
        if self.key is None or not self.path.exists():
            return
        env = read_kept(self.path)
        j = self._judge(env, 0)
        if j.outcome == "apply" and j.document is not None:
            self._apply(j.document, env, "stored")
        else:  # the kept copy was altered on this host: run without it, say so
            self.ctx.record("policy.forged", severity="high",
                            details={**self._detail(), "source": "stored", "path": str(self.path), "reason": j.reason,
                                     "offered_version": j.version, "running_version": self.running})

    # -- from the collector --------------------------------------------------------------
    def wants(self, announced: Any) -> bool:
        return (self.key is not None and isinstance(announced, int) and not isinstance(announced, bool)
                and announced > 0 and announced != self.running)

    def offer(self, announced: Any, client: httpx.Client) -> str:
        """Fetch and judge the latest document when `announced` (the heartbeat answer's
        version of this document) is not the running one; returns what happened."""
        if not self.wants(announced):
            return "idle"
        status, env, etag = fetch_signed(client, self.URL, self.ctx.identity.agent_id, self.etag)
        if env is None:
            return status
        with self._lock:   # one judgement at a time: the running version is what the next one compares with
            j = self._judge(env, self.running, self.signature)
            self.etag = etag
            if j.outcome == "apply" and j.document is not None:
                keep(self.path, env)
                self._apply(j.document, env, "collector")
        if j.outcome == "forged":
            log.warning("central %s refused: %s", self.NAME, j.reason)
            self.ctx.record("policy.forged", severity="high",
                            details={**self._detail(), "source": "collector", "reason": j.reason,
                                     "offered_version": j.version, "announced_version": announced,
                                     "running_version": self.running})
        elif j.outcome == "rollback":
            log.warning("central %s refused: %s", self.NAME, j.reason)
            self.ctx.record("policy.rollback_refused", severity="high",
                            details={**self._detail(), "reason": j.reason, "offered_version": j.version,
                                     "announced_version": announced, "running_version": self.running})
        return j.outcome

    def _apply(self, doc: dict[str, Any], env: dict[str, Any], source: str) -> None:
        raise NotImplementedError


class CentralPolicy(SignedDocument):
    def __init__(self, ctx: AgentContext):
        super().__init__(ctx)
        self.local = dict(ctx.config.policy.actions)
        self.locked = list(ctx.config.policy.locked)

    def _apply(self, doc: dict[str, Any], env: dict[str, Any], source: str) -> None:
        before = dict(self.ctx.config.policy.actions)
        identity = getattr(self.ctx, "identity", None)
        mine = rules.resolve(doc, self.ctx.config.host.class_, getattr(identity, "agent_id", None))
        eff = rules.effective_actions(self.local, mine.cells, self.locked)
        self.ctx.config.policy.actions = eff.actions   # one reference swap: decisions read it anew
        self.running, self.signature = doc["version"], env["signature"]
        applied_at = utcnow()
        self.ctx.status["policy"] = {"version": self.running, "applied_at": applied_at}
        changed = rules.changes(before, eff.actions)
        log.info("central policy version %d applied (%s, %d cell(s) changed)", self.running, source, len(changed))
        self.ctx.record("policy.applied", details={
            "version": self.running, "issued_at": doc.get("issued_at"), "source": source,
            "applied_at": applied_at, "changed": changed, "kept_local": eff.kept_local,
            "scope": mine.scopes, "group": mine.group, "scoped_cells": mine.scoped})


def policy_of(ctx: AgentContext) -> CentralPolicy:
    """The context's central policy (made once; daemon.run makes it before the components)."""
    central = getattr(ctx, "central", None)
    if central is None:
        central = ctx.central = CentralPolicy(ctx)  # type: ignore[attr-defined]
    return central


class CentralRules(SignedDocument):
    """The security administrator's signed rules document (docs/rules.md "Central rules"):
    a site rule file and fingerprints by content hash, kept in state_dir/central-rules.json.
    Applying it is storing it: every scanner of this agent reads the kept file (verified
    against the same key) beside its local rule_dirs, notices the new version on its next
    file (agent/scan/engine.py), and replaces its worker processes and verdicts then."""
    URL = "/api/v1/rules"
    STORE = RULES_STORE
    NAME = "rules"
    check = staticmethod(rulesdoc.verify)

    def __init__(self, ctx: AgentContext):
        super().__init__(ctx)
        self.doc: dict[str, Any] | None = None

    def _apply(self, doc: dict[str, Any], env: dict[str, Any], source: str) -> None:
        before, self.doc = self.doc, doc
        self.running, self.signature = doc["version"], env["signature"]
        applied_at = utcnow()
        self.ctx.status["rules"] = {"version": self.running, "applied_at": applied_at}
        summary = rulesdoc.summary(doc)
        changed = rulesdoc.changes(before, doc) if before is not None else {}
        changed.pop("rules", None)   # the rule text is the console's audit record, not the agent's
        log.info("central rules version %d applied (%s: %s)", self.running, source, summary["rules"])
        self.ctx.record("rules.applied", details={
            "version": self.running, "issued_at": doc.get("issued_at"), "source": source,
            "applied_at": applied_at, **summary, "changed": changed})


def rules_of(ctx: AgentContext) -> CentralRules:
    """The context's central rules (made once, like policy_of)."""
    central = getattr(ctx, "central_rules", None)
    if central is None:
        central = ctx.central_rules = CentralRules(ctx)  # type: ignore[attr-defined]
    return central


# -- shared by every signed central document the agent fetches ----------------------------------
def fetch_signed(client: httpx.Client, path: str, agent_id: str, etag: str) -> tuple[str, Any, str]:
    """GET a signed document with If-None-Match `etag`: ("ok", envelope, new etag), or
    ("unchanged" | "fetch failed (N)", None, etag). An unreadable body is an envelope
    that does not verify ({"unreadable": ...}), for the caller's judge to refuse."""
    headers = {"X-Baomi-Agent": agent_id}
    if etag:
        headers["If-None-Match"] = etag
    resp = client.get(path, headers=headers)
    if resp.status_code == 304:
        return "unchanged", None, etag
    if resp.status_code != 200:
        return f"fetch failed ({resp.status_code})", None, etag
    try:
        env = resp.json()
    except ValueError:
        env = {"unreadable": resp.text[:200]}
    return "ok", env, resp.headers.get("etag", "")


def keep(path: Path, env: dict[str, Any]) -> None:
    """Keep a verified envelope in state_dir (0600), as received: verified again at start."""
    atomic_write(path, json.dumps(env, ensure_ascii=False, sort_keys=True).encode("utf-8"), mode=0o600)


def read_kept(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return {"unreadable": str(exc)}
