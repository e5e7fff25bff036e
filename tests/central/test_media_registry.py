"""The central media registry (集中登记), end to end: a real collector (SQLite and
PostgreSQL) and, as root, a real `baomi-agent run` on a classified host with a loop exFAT
stick. The security administrator registers the stick from the console's /media list
(signed with the passphrase); within a few heartbeats the agent treats it as registered
and a copy onto it is allowed; lowering its level is refused; the medium page shows the
host and the copy; revoking makes it personal again (denied); a registry document the
system administrator writes into the database is refused, and so is an older one."""
from __future__ import annotations

import html
import json
import re
import tempfile
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import sqlalchemy as sa

from baomi.agent.media.registry import load_public_key
from baomi.common import media_registry as rules
from tests.central.conftest import PASSPHRASE, add_users, central_toml, create_key, csrf_of, login, save_public_key
from tests.support.agent_run import AgentRun, gateway_unavailable, media_component_available
from tests.support.collector import Collector, SigningAgent
from tests.support.enforce_harness import wait_for, write
from tests.support.media import LoopMedium

REPORT = "工作报告\n本周完成的事项……\n".encode("utf-8") * 4


def _register(sec, fields: dict, passphrase: str = PASSPHRASE):
    page = sec.get("/media/register", params={k: v for k, v in fields.items() if k != "hosts"})
    assert page.status_code == 200, page.text[:300]
    data = {"csrf_token": csrf_of(page.text), "passphrase": passphrase, **fields}
    return sec.post("/media/register", data=data)


def _revoke(sec, rid: str, reason: str = ""):
    page = sec.get(f"/media/{rid}")
    return sec.post(f"/media/{rid}/revoke", data={"csrf_token": csrf_of(page.text), "passphrase": PASSPHRASE,
                                                   "reason": reason})


def _register_link(page: str, fs_uuid: str) -> dict[str, str]:
    """The 登记 link of the /media row of this medium: the binding it prefills."""
    for href in re.findall(r'<a class="register" href="([^"]+)"', page):
        q = dict(parse_qsl(urlsplit(html.unescape(href)).query, keep_blank_values=True))
        if q.get("fs_uuid") == fs_uuid:
            return q
    raise AssertionError(f"no register link for {fs_uuid} on /media")


def test_console_registers_revokes_and_keeps_levels_rising(tmp_path: Path, database: str | None) -> None:
    """Without an agent process: the console's side and the agents' API."""
    with Collector(tmp_path / "c", database) as collector:
        add_users(collector)
        sec, aud, sysc = login(collector, "sec1"), login(collector, "aud1"), login(collector, "sys1")
        assert sec.get("/media/register").status_code == 200
        assert aud.get("/media/register").status_code == 403 and sysc.get("/media").status_code == 403
        assert create_key(sec).status_code == 201
        key = load_public_key(save_public_key(sec, tmp_path / "pub.pem"))
        agent = SigningAgent(collector.url)
        assert agent.enroll(collector.token()).status_code == 200
        stick = {"vendor_id": "0781", "product_id": "5567", "serial": "4C530001", "fs_uuid": "3A5F-1C2D",
                 "fs_label": "WORK", "class": "personal", "level": None, "registry_id": None}
        r = agent.send([agent.event("medium.denied", medium=stick, action="deny", severity="high"),
                        agent.event("file.copied", medium={**stick, "class": "registered"}, action="allow",
                                    file={"name": "周报.docx", "path": "/media/u/WORK/周报.docx", "level": "secret"})])
        assert r.status_code == 200 and r.json()["media_registry_version"] == 0
        headers = {"X-Baomi-Agent": agent.agent_id}
        assert sec.get(collector.url + "/api/v1/media-registry", headers=headers).status_code == 404

        # the row's 登记 link prefills the binding
        link = _register_link(sec.get("/media").text, "3A5F-1C2D")
        assert link == {k: stick[k] for k in rules.BINDING_KEYS + ("fs_label",)}
        form = sec.get("/media/register", params=link).text
        assert 'value="4C530001"' in form and 'value="3A5F-1C2D"' in form and 'placeholder="M-0001"' in form
        # a wrong passphrase signs nothing; a level below what it held (a secret file copied on) is refused
        fields = {**link, "owner": "张三", "level": "secret", "hosts": ["classified"], "expires": "2099-12-31"}
        assert _register(sec, fields, "Not-The-Passphrase-9").status_code == 403
        low = _register(sec, {**fields, "level": "confidential"})
        assert low.status_code == 409 and "一次涉密" in low.text and "周报.docx" in low.text
        assert "秘密 低于该介质曾持有的 机密" in low.text and "测试-PC01" in low.text
        r = _register(sec, fields)
        assert r.status_code == 303 and r.headers["location"] == "/media/M-0001?done=registered"

        # the agents' API: the batch answer names version 1, the document verifies with the console's key
        r = agent.send([agent.event("agent.heartbeat", details={})])
        assert r.json()["media_registry_version"] == 1
        got = sec.get(collector.url + "/api/v1/media-registry", headers=headers)
        assert got.status_code == 200
        doc = rules.verify(got.json(), key)
        shown = [(m["id"], m["level"], m["hosts"], m["fs_uuid"], m["owner"], m["registered_by"]) for m in doc["media"]]
        assert shown == [("M-0001", "secret", ["classified"], "3A5F-1C2D", "张三", "sec1")]
        assert sec.get(collector.url + "/api/v1/media-registry",
                       headers={**headers, "If-None-Match": got.headers["etag"]}).status_code == 304
        assert sec.get(collector.url + "/api/v1/media-registry").status_code == 401   # agents only

        # the medium page: registration, host, copy; the auditor reads it and cannot change it
        page = aud.get("/media/M-0001").text
        for shown in ("张三", "测试-PC01", "周报.docx", "3A5F-1C2D"):
            assert shown in page, shown
        assert 'name="passphrase"' not in page
        assert aud.post("/media/M-0001/revoke", data={"passphrase": PASSPHRASE}).status_code in (400, 403)
        assert "M-0001" in sec.get("/media").text
        # raising is fine, lowering again is not; a typed id; an unknown id is 404
        again = _register(sec, {**fields, "level": "top_secret"})      # the same stick under a new id
        assert again.status_code == 400 and "M-0001" in again.text
        assert _register(sec, {**fields, "id": "M-0001", "level": "top_secret"}).status_code == 303
        assert _register(sec, {**fields, "id": "M-0001", "level": "secret"}).status_code == 409
        typed = {"id": "SITE-7", "owner": "李四", "level": "internal", "hosts": ["unclassified"],
                 "fs_uuid": "99AA-0001", "serial": "", "vendor_id": "", "product_id": "", "fs_label": ""}
        assert _register(sec, typed).status_code == 303
        assert _register(sec, {**typed, "id": "a b"}).status_code == 400
        assert sec.get("/media/NOPE-1").status_code == 404
        assert _revoke(sec, "M-0001", "遗失").status_code == 303
        assert _revoke(sec, "M-0001").status_code == 404
        doc = rules.verify(sec.get(collector.url + "/api/v1/media-registry", headers=headers).json(), key)
        assert doc["version"] == 4 and [m["id"] for m in doc["media"]] == ["SITE-7"]
        assert [(r["id"], r["reason"]) for r in doc["revoked"]] == [("M-0001", "遗失")]
        assert "遗失" in sec.get("/media/M-0001").text
        # the next automatic id is above every id used, revoked ones included
        assert 'placeholder="M-0002"' in sec.get("/media/register").text

        # the auditor's trail: every change with before and after, and the refusals
        audit = aud.get("/audit").text
        assert audit.count("console.medium_registered") >= 3 and "console.medium_revoked" in audit
        assert "console.medium_register_refused" in audit
        engine = sa.create_engine(database or f"sqlite:///{tmp_path / 'c' / 'state' / 'collector.db'}")
        try:
            with engine.connect() as conn:
                rows = [(k, json.loads(b)["details"]) for k, b in conn.execute(sa.text(
                    "SELECT kind, body FROM events WHERE kind LIKE 'console.medium_%' ORDER BY pk"))]
        finally:
            engine.dispose()
        first = next(d for k, d in rows if k == "console.medium_registered")
        assert first["before"] is None and first["after"]["level"] == "secret" and first["version"] == 1
        raised = [d for k, d in rows if k == "console.medium_registered" and d["registry_id"] == "M-0001"][1]
        assert raised["before"]["level"] == "secret" and raised["after"]["level"] == "top_secret"
        revoked = next(d for k, d in rows if k == "console.medium_revoked")
        assert revoked["before"]["level"] == "top_secret" and revoked["after"]["reason"] == "遗失"
        refused = [d for k, d in rows if k == "console.medium_register_refused"]
        assert [(d["requested"], d["held"]) for d in refused] == [("confidential", "secret"), ("secret", "top_secret")]


@pytest.mark.root
@pytest.mark.timeout(480)
def test_agent_takes_registrations_from_the_console(tmp_path: Path, artifacts: Path, database: str | None) -> None:
    if media_component_available():
        pytest.skip(media_component_available())
    mode = "after_write" if gateway_unavailable() else "held"
    tmp = Path(tempfile.mkdtemp(prefix="baomi-media-registry-"))
    agent = None
    with Collector(tmp_path / "c", database) as collector:
        add_users(collector)
        sec = login(collector, "sec1")
        assert create_key(sec).status_code == 201
        pem = save_public_key(sec, tmp / "secadmin-policy.pub.pem")
        engine = sa.create_engine(database or f"sqlite:///{tmp_path / 'c' / 'state' / 'collector.db'}")
        try:
            with LoopMedium("exfat", size_mb=64, workdir=tmp, loop_range=range(760, 780)) as loop:
                agent = AgentRun(tmp, [loop], mode=mode, host_class="classified",
                                 log_path=artifacts / "media-registry-agent.log", extra_toml=central_toml(collector, pem))
                agent.start(ready=False)
                # 1. a personal stick on a classified host: denied
                denied = agent.wait_event(lambda e: e["kind"] == "medium.denied"
                                          and e["medium"]["fs_uuid"] == loop.fs_uuid, 60, "the stick denied")
                assert denied["medium"]["class"] == "personal"

                # 2. the secadmin registers it from the /media list
                page = wait_for(lambda: (lambda t: t if loop.fs_uuid in t else None)(sec.get("/media").text),
                                30, "the stick on /media")
                link = _register_link(page, loop.fs_uuid)
                since = agent.last_seq()
                r = _register(sec, {**link, "owner": "张三", "level": "secret", "hosts": ["classified"]})
                assert r.status_code == 303, r.text[:500]
                applied = agent.wait_event(lambda e: e["kind"] == "media.registry_applied", 30,
                                           "the registry applied", since_seq=since)
                assert applied["details"]["version"] == 1 and applied["details"]["source"] == "collector"
                allowed = agent.wait_event(lambda e: e["kind"] == "medium.allowed"
                                           and e["medium"].get("registry_id") == "M-0001", 30,
                                           "the stick allowed as M-0001", since_seq=since)
                assert allowed["rule"] == "classified.registered" and allowed["medium"]["level"] == "secret"
                assert allowed["medium"]["owner"] == "张三"

                # 3. a copy onto it is allowed and recorded with its registry id
                since = agent.last_seq()
                mp = loop.mount()
                if mode == "held":
                    agent.wait_event(lambda e: e["kind"] == "enforce.mode", 60, "the stick held", since_seq=since)
                write(mp / "report.txt", REPORT)
                copied = agent.wait_event(lambda e: e["kind"] in ("file.copied", "file.blocked")
                                          and e["file"]["name"] == "report.txt", 60, "the copy", since_seq=since)
                assert copied["kind"] == "file.copied" and copied["medium"]["registry_id"] == "M-0001", copied
                assert (mp / "report.txt").read_bytes() == REPORT

                # 4. the medium page shows the host and the copy; lowering its level is refused
                page = wait_for(lambda: (lambda t: t if "report.txt" in t else None)(sec.get("/media/M-0001").text),
                                30, "the copy on the medium page")
                assert "e2e-pc" in page
                low = _register(sec, {**link, "id": "M-0001", "owner": "张三", "level": "internal",
                                      "hosts": ["classified"]})
                assert low.status_code == 409 and "一次涉密" in low.text

                # 5. revoked: personal again, denied
                loop.unmount()
                since = agent.last_seq()
                assert _revoke(sec, "M-0001", "停用").status_code == 303
                agent.wait_event(lambda e: e["kind"] == "media.registry_applied" and e["details"]["version"] == 2,
                                 30, "the revocation applied", since_seq=since)
                again = agent.wait_event(lambda e: e["kind"] == "medium.denied"
                                         and e["medium"]["fs_uuid"] == loop.fs_uuid, 30, "the stick denied again",
                                         since_seq=since)
                assert again["medium"]["class"] == "personal" and again["medium"]["registry_id"] is None

                # 6. the sysadmin writes registry documents into the database: refused
                with engine.begin() as conn:
                    v1 = conn.execute(sa.text("SELECT document, signature, issued_at FROM media_registry_documents "
                                              "WHERE version = 1")).one()
                    doc = json.loads(v1.document)
                    doc["version"] = 3     # version 1's registration of M-0001, renumbered: no longer verifies
                    conn.execute(sa.text("INSERT INTO media_registry_documents (version, issued_at, published_by, "
                                         "document, signature) VALUES (3, :t, 'sys1', :d, :s)"),
                                 {"t": v1.issued_at, "d": json.dumps(doc), "s": v1.signature})
                forged = agent.wait_event(lambda e: e["kind"] == "policy.forged"
                                          and e["details"].get("document") == "media_registry", 30,
                                          "the altered registry refused", since_seq=since)
                assert forged["details"]["offered_version"] == 3 and forged["severity"] == "high"
                # ...and an older one, served again by deleting the newer rows
                with engine.begin() as conn:
                    conn.execute(sa.text("DELETE FROM media_registry_documents WHERE version >= 2"))
                rolled = agent.wait_event(lambda e: e["kind"] == "policy.rollback_refused"
                                          and e["details"].get("document") == "media_registry", 30,
                                          "the older registry refused", since_seq=since)
                assert rolled["details"]["offered_version"] == 1 and rolled["details"]["running_version"] == 2
                assert not [e for e in agent.events("medium.allowed", since) if e["medium"]["fs_uuid"] == loop.fs_uuid]

                # 7. a restart offline: the kept registry (version 2, M-0001 revoked) applies from disk
                agent.stop()
                collector.stop()
                since = agent.last_seq()
                agent.start(ready=False)
                kept = agent.wait_event(lambda e: e["kind"] == "media.registry_applied", 30, "the kept registry",
                                        since_seq=since)
                assert kept["details"]["source"] == "stored" and kept["details"]["version"] == 2
                agent.wait_event(lambda e: e["kind"] == "medium.denied" and e["medium"]["fs_uuid"] == loop.fs_uuid,
                                 30, "the stick denied after the restart", since_seq=since)
        finally:
            if agent is not None:
                agent.stop()
                agent.cleanup_mounts()
            engine.dispose()
