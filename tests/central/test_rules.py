"""Site rules and fingerprints published through the console (as the browser's forms
post them: CSRF token and signing passphrase), refused with the line and the reason when
a rule is bad, fingerprints kept as hashes only, other roles refused, every change in
the auditor's trail. Real collector, SQLite and PostgreSQL."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization

from baomi.common import central as docs
from baomi.common import rulesdoc
from baomi.service import db
from tests.central.conftest import PASSPHRASE, add_users, create_key, csrf_of, login, save_public_key
from tests.support.collector import Collector, SigningAgent

pytestmark = pytest.mark.timeout(300)

SITE = '''# the site's own dictionary
[[rule]]
id = "site.tianqiong"
kind = "keywords"
level = "secret"
words = ["天穹计划"]
'''
BAD = SITE + '''
[[rule]]
id = "site.bad"
kind = "keywords"
level = "ultra"
words = ["x"]
'''


def post_rules(sec: httpx.Client, text: str, passphrase: str = PASSPHRASE) -> httpx.Response:
    csrf = csrf_of(sec.get("/rules").text)
    return sec.post("/rules", data={"rules": text, "passphrase": passphrase, "csrf_token": csrf})


def upload(sec: httpx.Client, name: str, data: bytes, level: str = "secret",
           passphrase: str = PASSPHRASE) -> httpx.Response:
    csrf = csrf_of(sec.get("/rules").text)
    return sec.post("/rules/fingerprints", data={"name": name, "level": level, "passphrase": passphrase,
                                                 "csrf_token": csrf},
                    files={"document": ("contract.docx", data, "application/octet-stream")})


def test_publish_rules_and_fingerprints_hashes_only(tmp_path: Path, database: str | None) -> None:
    with Collector(tmp_path / "c", database) as collector:
        add_users(collector)
        sec = login(collector, "sec1")
        assert create_key(sec).status_code == 201
        pub = serialization.load_pem_public_key(save_public_key(sec, tmp_path / "k.pem").read_bytes())
        agent = SigningAgent(collector.url)
        assert agent.enroll(collector.token()).status_code == 200
        h = {"X-Baomi-Agent": agent.agent_id}
        assert httpx.get(f"{collector.url}/api/v1/rules", headers=h).status_code == 404
        assert httpx.get(f"{collector.url}/api/v1/rules").status_code == 401

        # a bad rule is refused with its line and the reason; nothing is published
        r = post_rules(sec, BAD)
        assert r.status_code == 400
        assert "central rules:11: rule &#39;site.bad&#39; key &#39;level&#39;: unknown level &#39;ultra&#39;" in r.text
        assert "天穹计划" in r.text   # the text typed stays in the form
        r = post_rules(sec, "[[rule]\n")
        assert r.status_code == 400 and "central rules:1: TOML syntax error" in r.text
        assert post_rules(sec, SITE, passphrase="Wrong-Passphrase-2026").status_code == 403
        r = post_rules(sec, SITE)
        assert r.status_code == 201, r.text[:2000]
        ans = agent.send([agent.event("agent.heartbeat", details={"version": "t"})]).json()
        assert ans["rules_version"] == 1

        # a fingerprint: only the hash is kept
        secret = b"PK\x03\x04 contract body " + os.urandom(4096) + "合同正文".encode()
        r = upload(sec, "合同范本", secret)
        assert r.status_code == 201, r.text[:2000]
        sha = hashlib.sha256(secret).hexdigest()
        assert sha in r.text
        got = httpx.get(f"{collector.url}/api/v1/rules", headers=h)
        assert got.status_code == 200
        doc = rulesdoc.verify(got.json(), pub)
        assert doc["version"] == 2 and doc["rules"] == SITE
        assert doc["fingerprints"] == [{"name": "合同范本", "level": "secret", "sha256": sha}]
        assert docs.judge(got.json(), pub, 1, check=rulesdoc.verify).outcome == "apply"
        again = httpx.get(f"{collector.url}/api/v1/rules", headers={**h, "If-None-Match": got.headers["etag"]})
        assert again.status_code == 304
        engine = db.make_engine(database or db.default_sqlite_url(tmp_path / "c" / "state"))
        with engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(sa.select(db.rules_documents))]
        engine.dispose()
        dump = json.dumps(rows, default=str, ensure_ascii=False)
        assert sha in dump and "contract body" not in dump and "合同正文" not in dump
        if database is None:   # nor anywhere in the database file
            raw = b"".join(p.read_bytes() for p in (tmp_path / "c" / "state").glob("*.db*"))
            assert secret[:64] not in raw and "合同正文".encode() not in raw

        # the size cap: refused with a clear error, nothing registered
        big = upload(sec, "too big", b"\0" * (50 * 1024 * 1024 + 1))
        assert big.status_code == 413 and "larger than 50 MB" in big.text
        r = upload(sec, "合同范本", b"other")
        assert r.status_code == 400 and "registered already" in r.text

        # removal
        csrf = csrf_of(sec.get("/rules").text)
        r = sec.post("/rules/fingerprints/remove", data={"name": "合同范本", "passphrase": PASSPHRASE,
                                                          "csrf_token": csrf})
        assert r.status_code == 201
        doc = rulesdoc.verify(httpx.get(f"{collector.url}/api/v1/rules", headers=h).json(), pub)
        assert doc["version"] == 3 and doc["fingerprints"] == []

        # an export file of `baomi-agent fingerprint export`: its text fingerprints are kept
        export = rulesdoc.export("方案", "top_secret", "ab" * 32, 5000, range(1000, 1400))
        csrf = csrf_of(sec.get("/rules").text)
        r = sec.post("/rules/fingerprints", data={"level": "secret", "passphrase": PASSPHRASE, "csrf_token": csrf},
                     files={"document": ("方案.fingerprint.json", json.dumps(export).encode(), "application/json")})
        assert r.status_code == 201, r.text[:2000]
        doc = rulesdoc.verify(httpx.get(f"{collector.url}/api/v1/rules", headers=h).json(), pub)
        (fp,) = doc["fingerprints"]
        assert fp["name"] == "方案" and fp["level"] == "top_secret" and fp["sha256"] == "ab" * 32
        assert fp["chars"] == 5000 and fp["hashes"] == list(range(1000, 1400))
        assert ">400<" in sec.get("/rules").text

        # the auditor sees each change with before and after; the refusals too
        published = collector.stored(kind="console.rules_published")
        assert [p["details"]["version"] for p in published] == [1, 2, 3, 4]
        assert published[3]["details"]["changes"]["fingerprints_added"] == [
            {"name": "方案", "level": "top_secret", "sha256": "ab" * 32, "text_fingerprints": 400}]
        assert published[0]["details"]["changes"]["rules"] == {"before": "", "after": SITE}
        assert published[1]["details"]["changes"]["fingerprints_added"][0]["sha256"] == sha
        assert published[2]["details"]["changes"]["fingerprints_removed"][0]["name"] == "合同范本"
        refused = collector.stored(kind="console.rules_refused")
        assert [e["details"]["line"] for e in refused] == [11, 1]
        aud = login(collector, "aud1")
        assert "console.rules_published" in aud.get("/audit").text
        page = aud.get("/rules")
        assert page.status_code == 200 and "天穹计划" in page.text and 'name="rules"' not in page.text


def test_sysadmin_and_auditor_cannot_publish_rules(tmp_path: Path) -> None:
    with Collector(tmp_path / "c") as collector:
        add_users(collector)
        sec = login(collector, "sec1")
        assert create_key(sec).status_code == 201
        for name in ("sys1", "aud1"):
            c = login(collector, name)
            csrf = csrf_of(c.get("/hosts" if name == "sys1" else "/rules").text)
            r = c.post("/rules", data={"rules": SITE, "passphrase": PASSPHRASE, "csrf_token": csrf})
            assert r.status_code == 403
            r = c.post("/rules/fingerprints", data={"name": "x", "level": "secret", "passphrase": PASSPHRASE,
                                                    "csrf_token": csrf}, files={"document": ("a", b"a")})
            assert r.status_code == 403
        assert login(collector, "sys1").get("/rules").status_code == 403
        assert collector.stored(kind="console.rules_published") == []
