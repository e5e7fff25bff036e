"""The security administrator publishes signed policy through the console's HTTP
interface; agents fetch it with ETags; other roles cannot publish; every change is in
the auditor's trail with before and after. Real collector, SQLite and PostgreSQL."""
from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization

from baomi.common import central as rules
from tests.central.conftest import PASSPHRASE, add_users, create_key, csrf_of, login, publish, save_public_key
from tests.support.collector import Collector, SigningAgent

pytestmark = pytest.mark.timeout(240)


def audit(collector: Collector, kind: str) -> list[dict]:
    aud = login(collector, "aud1")
    assert aud.get("/audit").status_code == 200
    return [e for e in collector.stored(kind=kind)]


def test_secadmin_signs_and_publishes_agents_fetch_with_etag(tmp_path: Path, database: str | None) -> None:
    with Collector(tmp_path / "c", database) as collector:
        add_users(collector)
        sec = login(collector, "sec1")
        assert "policy-version" in sec.get("/policy").text
        # a weak passphrase is refused; then the key is made, once
        weak = sec.post("/policy/key", data={"passphrase": "short", "passphrase2": "short",
                                             "csrf_token": csrf_of(sec.get("/policy").text)})
        assert weak.status_code == 400
        assert create_key(sec).status_code == 201
        assert create_key(sec).status_code in (403, 409)   # no second key from the console
        pem = save_public_key(sec, tmp_path / "secadmin.pub.pem")
        pub = serialization.load_pem_public_key(pem.read_bytes())

        agent = SigningAgent(collector.url)
        assert agent.enroll(collector.token()).status_code == 200
        h = {"X-Baomi-Agent": agent.agent_id}
        assert httpx.get(f"{collector.url}/api/v1/policy", headers=h).status_code == 404
        assert httpx.get(f"{collector.url}/api/v1/policy").status_code == 401   # enrolled agents only
        r = agent.send([agent.event("agent.heartbeat", details={"version": "t", "policy_version": "builtin"})])
        assert r.json()["policy_version"] == 0

        # a wrong passphrase publishes nothing
        wrong = publish(sec, {"unclassified.personal.internal": "block"}, passphrase="Wrong-Passphrase-2026")
        assert wrong.status_code == 403
        r = publish(sec, {"unclassified.personal.internal": "block", "classified.personal": "read_only"})
        assert r.status_code == 201, r.text[:2000]
        assert "unclassified.personal.internal" in r.text

        r = agent.send([agent.event("agent.heartbeat", details={"version": "t", "policy_version": "builtin"})])
        assert r.json()["policy_version"] == 1
        got = httpx.get(f"{collector.url}/api/v1/policy", headers=h)
        assert got.status_code == 200 and got.headers["etag"]
        doc = rules.verify(got.json(), pub)
        assert doc["version"] == 1 and doc["cells"]["unclassified.personal.internal"] == "block"
        assert doc["cells"]["classified.personal"] == "read_only"
        assert doc["cells"]["unclassified.personal.public"] == "audit"   # every cell, not only the changes
        again = httpx.get(f"{collector.url}/api/v1/policy", headers={**h, "If-None-Match": got.headers["etag"]})
        assert again.status_code == 304 and not again.content

        # the auditor sees the change with before and after; the failed attempt too
        published = audit(collector, "console.policy_published")
        (p,) = published
        assert p["user"]["name"] == "sec1" and p["details"]["version"] == 1
        assert p["details"]["changes"] == {
            "classified.personal": {"before": "deny", "after": "read_only"},
            "unclassified.personal.internal": {"before": "notify", "after": "block"}}
        assert [e["details"]["reason"] for e in collector.stored(kind="console.policy_sign_failed")] == \
            ["wrong passphrase"]
        assert collector.stored(kind="console.signing_key_created")
        aud_page = login(collector, "aud1").get("/audit").text
        assert "console.policy_published" in aud_page and "read_only" in aud_page


def test_sysadmin_and_auditor_cannot_publish_and_the_key_is_sealed(tmp_path: Path) -> None:
    with Collector(tmp_path / "c") as collector:
        add_users(collector)
        sec = login(collector, "sec1")
        assert create_key(sec).status_code == 201
        for name in ("sys1", "aud1"):
            c = login(collector, name)
            csrf = csrf_of(c.get("/tokens").text)   # the account's own, valid token: only the role is wrong
            r = c.post("/policy", data={"cell.unclassified.personal.internal": "allow", "passphrase": PASSPHRASE,
                                        "csrf_token": csrf})
            assert r.status_code == 403, (name, r.status_code)
            r = c.post("/policy/key", data={"passphrase": PASSPHRASE, "passphrase2": PASSPHRASE,
                                            "csrf_token": csrf})
            assert r.status_code == 403
        assert len(collector.stored(kind="console.forbidden")) >= 4
        # what the database holds is the sealed key only: no passphrase, no raw private key
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'c' / 'state' / 'collector.db'}")
        with engine.connect() as conn:
            (sealed,) = conn.execute(sa.text("SELECT sealed FROM signing_keys")).one()
            assert conn.execute(sa.text("SELECT count(*) FROM policy_documents")).scalar_one() == 0
        blob = json.loads(sealed)
        assert blob["kdf"] == "scrypt" and PASSPHRASE not in sealed and "PRIVATE" not in sealed


def test_cells_a_form_does_not_name_keep_their_current_action(tmp_path: Path) -> None:
    with Collector(tmp_path / "c") as collector:
        add_users(collector)
        sec = login(collector, "sec1")
        assert create_key(sec).status_code == 201
        for cell, action in (("unclassified.personal.public", "block"), ("classified.personal", "read_only")):
            r = sec.post("/policy", data={f"cell.{cell}": action, "passphrase": PASSPHRASE,
                                          "csrf_token": csrf_of(sec.get("/policy").text)})
            assert r.status_code == 201, r.text[:1000]
        bad = sec.post("/policy", data={"cell.classified.personal": "block", "passphrase": PASSPHRASE,
                                        "csrf_token": csrf_of(sec.get("/policy").text)})
        assert bad.status_code == 400   # a device cell takes allow / read_only / deny
        agent = SigningAgent(collector.url)
        assert agent.enroll(collector.token()).status_code == 200
        got = httpx.get(f"{collector.url}/api/v1/policy", headers={"X-Baomi-Agent": agent.agent_id}).json()
        assert got["document"]["version"] == 2
        cells = got["document"]["cells"]
        assert cells["unclassified.personal.public"] == "block" and cells["classified.personal"] == "read_only"
