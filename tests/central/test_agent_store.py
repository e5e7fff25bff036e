"""The agent's side in-process: the stored document is verified at each start, locked
cells keep their local value, and what the collector serves is judged (forged, older,
unchanged with a 304). The collector is an httpx MockTransport here; the real one is in
test_agent_policy.py."""
from __future__ import annotations

import json
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from baomi.agent import config as agent_config
from baomi.agent.central import STORE, CentralPolicy
from baomi.agent.context import open_context
from baomi.agent.heartbeat import heartbeat_details
from baomi.common import central as rules

KEY = Ed25519PrivateKey.generate()


def context(tmp: Path, extra: str = ""):
    pub = tmp / "secadmin.pub.pem"
    pub.write_bytes(KEY.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    conf = tmp / "agent.toml"
    conf.write_text(f"""
[host]
class = "unclassified"
name = "store-pc"
[paths]
state_dir = "{tmp / 'state'}"
[central]
public_key = "{pub}"
[policy]
actions = {{ "classified.personal" = "read_only" }}
{extra}
""")
    return open_context(agent_config.load(conf))


def envelope(version: int, **cells: str) -> dict:
    cells = {k.replace("__", "."): v for k, v in cells.items()}
    return rules.sign(rules.document(version, cells, "2026-12-01T10:00:00Z"), KEY)


def kinds(ctx) -> list[str]:
    return [e["kind"] for e in ctx.spool.unacked(1000)]


def serving(answers: list[dict | None]) -> httpx.Client:
    """A collector answering GET /api/v1/policy with each envelope in turn (None: 304)."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        env = answers.pop(0)
        if env is None:
            return httpx.Response(304, headers={"ETag": '"same"'})
        return httpx.Response(200, json=env, headers={"ETag": f'"v{env["document"]["version"]}"'})
    client = httpx.Client(base_url="http://collector", transport=httpx.MockTransport(handler))
    client.seen = seen  # type: ignore[attr-defined]
    return client


def test_locked_cells_keep_their_local_value_and_the_heartbeat_names_the_version(tmp_path: Path) -> None:
    ctx = context(tmp_path, 'locked = ["classified.personal"]')
    cp = CentralPolicy(ctx)
    client = serving([envelope(1, classified__personal="deny", unclassified__personal__internal="block")])
    assert cp.offer(1, client) == "apply"
    assert ctx.config.policy.actions == {"classified.personal": "read_only",
                                         "unclassified.personal.internal": "block"}
    applied = [e for e in ctx.spool.unacked(1000) if e["kind"] == "policy.applied"][-1]
    assert applied["details"]["kept_local"] == ["classified.personal"]
    hb = heartbeat_details(ctx)
    assert hb["policy_version"] == "central:1" and hb["policy_applied_at"]
    assert client.seen[0].headers["x-baomi-agent"] == ctx.identity.agent_id
    ctx.spool.close()


def test_served_documents_are_judged_and_a_refusal_is_not_refetched(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    cp = CentralPolicy(ctx)
    other = Ed25519PrivateKey.generate()
    forged = rules.sign(rules.document(2, {"unclassified.personal.internal": "allow"}, "x"), other)
    client = serving([envelope(2, unclassified__personal__internal="block"), forged, None,
                      envelope(1, unclassified__personal__internal="allow")])
    assert cp.offer(2, client) == "apply"
    assert cp.offer(2, client) == "idle"          # runs it: nothing fetched
    assert cp.offer(3, client) == "forged"
    assert cp.offer(3, client) == "unchanged"     # the same answer (ETag) is not judged twice
    assert client.seen[2].headers["if-none-match"] == '"v2"'
    assert cp.offer(1, client) == "rollback"
    assert ctx.config.policy.actions["unclassified.personal.internal"] == "block"
    assert kinds(ctx).count("policy.forged") == 1 and kinds(ctx).count("policy.rollback_refused") == 1
    ctx.spool.close()


def test_the_stored_document_is_verified_again_at_start(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    CentralPolicy(ctx).offer(1, serving([envelope(1, unclassified__personal__public="block")]))
    stored = ctx.config.state_dir / STORE
    assert stored.stat().st_mode & 0o777 == 0o600
    ctx.spool.close()

    ctx = context(tmp_path)   # a restart, collector or not
    assert ctx.config.policy.actions == {"classified.personal": "read_only"}
    cp = CentralPolicy(ctx)
    cp.load_stored()
    assert cp.running == 1 and ctx.config.policy.actions["unclassified.personal.public"] == "block"
    ctx.spool.close()

    env = json.loads(stored.read_text())           # root on the host edits the kept copy
    env["document"]["cells"]["unclassified.personal.public"] = "allow"
    stored.write_text(json.dumps(env))
    ctx = context(tmp_path)
    cp = CentralPolicy(ctx)
    cp.load_stored()
    assert cp.running == 0 and ctx.config.policy.actions == {"classified.personal": "read_only"}
    (forged,) = [e for e in ctx.spool.unacked(1000) if e["kind"] == "policy.forged"]
    assert forged["details"]["source"] == "stored"
    ctx.spool.close()


def test_locked_names_a_known_cell(tmp_path: Path) -> None:
    import pytest
    from baomi.common.tomlconf import ConfigError
    with pytest.raises(ConfigError, match="policy.locked"):
        context(tmp_path, 'locked = ["no.such.cell"]')
