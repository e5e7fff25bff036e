"""The agent's side of the central media registry, in-process: a verified document is
kept and applied again at start (offline), a kept copy altered on the host is refused,
the collector's forged or older documents are refused with details.document =
"media_registry", and the bus tells the media component. The real collector and agent
are in test_media_registry.py."""
from __future__ import annotations

import json
from pathlib import Path

from baomi.agent.media.central import STORE, TOPIC, CentralRegistry, kept_document, registry_of
from baomi.common import central as signing
from baomi.common import media_registry as rules
from tests.central.test_agent_store import KEY, context, serving


def envelope(version: int, *ids: str, revoked: tuple[str, ...] = ()) -> dict:
    media = [rules.entry(id=i, owner="张三", level="secret", hosts=["classified"], fs_uuid=f"U-{i}",
                         issued="2026-12-01T10:00:00Z") for i in ids]
    rev = [{"id": i, "revoked_at": "2026-12-01T11:00:00Z", "revoked_by": "sec1", "reason": ""} for i in revoked]
    return signing.sign(rules.document(version, media, rev, "2026-12-01T10:00:00Z"), KEY)


def events(ctx, kind: str) -> list[dict]:
    return [e for e in ctx.spool.unacked(1000) if e["kind"] == kind]


def test_applied_kept_and_applied_again_at_start(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    told: list[int] = []
    ctx.bus.subscribe(TOPIC, told.append)
    reg = registry_of(ctx)
    assert reg.running == 0 and reg.document is None and registry_of(ctx) is reg
    client = serving([envelope(1, "M-0001"), None, envelope(2, revoked=("M-0001",))])
    assert reg.offer(1, client) == "apply" and told == [1]
    assert reg.offer(2, client) == "unchanged"          # a 304: nothing new
    assert client.seen[1].headers["if-none-match"] == '"v1"'
    assert reg.offer(2, client) == "apply" and reg.document["revoked"][0]["id"] == "M-0001"
    assert reg.offer(2, client) == "idle"                # the version it holds: not fetched
    applied = events(ctx, "media.registry_applied")
    assert [a["details"]["version"] for a in applied] == [1, 2]
    assert applied[1]["details"]["changes"] == {"registered": [], "changed": [], "revoked": ["M-0001"]}
    assert (Path(ctx.config.state_dir) / STORE).stat().st_mode & 0o777 == 0o600
    assert kept_document(ctx.config)["version"] == 2     # what `media list` merges, without the daemon
    ctx.spool.close()

    again = context(tmp_path)                            # a restart without the collector
    kept = CentralRegistry(again)
    kept.load_stored()
    assert kept.running == 2 and kept.document["revoked"][0]["id"] == "M-0001"
    assert events(again, "media.registry_applied")[-1]["details"]["source"] == "stored"
    again.spool.close()


def test_altered_kept_copy_forged_and_older_refused(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    reg = CentralRegistry(ctx)
    v2 = envelope(2, "M-0001")
    forged = {"document": {**envelope(3, "M-0001", "M-0009")["document"]}, "signature": v2["signature"]}
    client = serving([v2, forged, envelope(1, "M-0001")])
    assert reg.offer(2, client) == "apply"
    assert reg.offer(3, client) == "forged"
    assert reg.offer(1, client) == "rollback"
    assert reg.running == 2 and [m["id"] for m in reg.document["media"]] == ["M-0001"]
    f = events(ctx, "policy.forged")[-1]["details"]
    assert f["document"] == "media_registry" and f["offered_version"] == 3 and f["source"] == "collector"
    r = events(ctx, "policy.rollback_refused")[-1]["details"]
    assert r["document"] == "media_registry" and (r["offered_version"], r["running_version"]) == (1, 2)
    ctx.spool.close()

    path = Path(tmp_path / "state" / STORE)
    env = json.loads(path.read_text())
    env["document"]["media"][0]["level"] = "public"      # root on the host edits the kept copy
    path.write_text(json.dumps(env))
    again = context(tmp_path)
    kept = CentralRegistry(again)
    kept.load_stored()
    assert kept.running == 0 and kept.document is None and kept_document(again.config) is None
    f = events(again, "policy.forged")[-1]["details"]
    assert f["source"] == "stored" and f["document"] == "media_registry"
    again.spool.close()


def test_media_component_merges_and_a_broken_media_toml_keeps_the_previous_records(tmp_path: Path) -> None:
    """The registry in force (MediaComponent._load_registry, no threads): media.toml's records
    merged with the central document; a broken media.toml keeps the previous local records
    while a new central document still applies."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from baomi.agent.media import registry as reg_mod
    from baomi.agent.media.component import MediaComponent
    from baomi.common.keys import write_keypair

    local_key = Ed25519PrivateKey.generate()
    write_keypair(local_key, tmp_path / "media.pem", tmp_path / "media.pub.pem")
    media_toml = tmp_path / "media.toml"
    for rid in ("M-0001", "LOCAL-1"):
        reg_mod.add_record(media_toml, reg_mod.sign_record(
            {"id": rid, "owner": "local", "level": "internal", "hosts": ["classified"], "fs_uuid": f"U-{rid}"},
            local_key))
    ctx = context(tmp_path, f'[media]\nregistry = "{media_toml}"\nregistry_public_key = "{tmp_path / "media.pub.pem"}"')
    comp = MediaComponent(ctx)

    def in_force() -> dict[str, tuple[str, str]]:
        return {r.id: (r.source, r.level.id) for r in comp.registry.records}
    comp._load_registry(initial=True)
    assert in_force() == {"M-0001": ("local", "internal"), "LOCAL-1": ("local", "internal")}

    reg = registry_of(ctx)
    assert reg.offer(1, serving([envelope(1, "M-0001", "M-0002")])) == "apply"
    comp._load_registry()
    assert in_force() == {"M-0001": ("central", "secret"), "M-0002": ("central", "secret"),
                          "LOCAL-1": ("local", "internal")}
    media_toml.write_text(media_toml.read_text() + "\n[[medium]\nid = broken\n")
    assert reg.offer(2, serving([envelope(2, "M-0002", revoked=("M-0001",))])) == "apply"
    comp._load_registry()
    # media.toml is broken: its previous records stay; the revocation applies even to its M-0001
    assert in_force() == {"M-0002": ("central", "secret"), "LOCAL-1": ("local", "internal")}
    assert events(ctx, "registry.error")[-1]["details"]["kept_previous"] is True
    loaded = events(ctx, "registry.loaded")[-1]["details"]
    assert loaded["central_version"] == 2 and loaded["central_revoked"] == ["M-0001"]
    assert loaded["overridden_local"] == ["M-0001"]
    n = len(events(ctx, "registry.loaded"))
    comp._load_registry()                                  # nothing changed: nothing loaded again
    assert len(events(ctx, "registry.loaded")) == n
    ctx.spool.close()
