"""End to end: a real collector, a real `baomi-agent run` enforcing a loop exFAT medium.
A file with a site keyword (no national marking) copies to a personal stick; the
security administrator publishes a keyword dictionary at 机密 in the console and,
within a few heartbeats and without a restart, the same content under a new name is
blocked (the verdict cached with the old rules is not reused); a document registered
by upload in the console blocks an unmarked file with exactly its content; a rules
document written straight into the database is refused."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.central.conftest import PASSPHRASE, add_users, central_toml, create_key, csrf_of, login, save_public_key
from tests.support.agent_run import AgentRun, gateway_unavailable, is_mount, media_component_available
from tests.support.collector import Collector
from tests.support.enforce_harness import wait_for, write
from tests.support.media import LoopMedium

pytestmark = [pytest.mark.root, pytest.mark.timeout(300)]

SITE = '''[[rule]]
id = "site.tianqiong"
kind = "keywords"
level = "机密"
words = ["天穹计划"]
'''
KEYWORD_TEXT = "本季度天穹计划的试验安排如下，请各单位按时报送材料。\n".encode() * 10


def _copy(agent: AgentRun, mp: Path, name: str, data: bytes, held: bool) -> dict:
    since = agent.last_seq()
    try:
        write(mp / name, data)
        refused = False
    except PermissionError:
        refused = True
    e = agent.wait_event(lambda e: e["kind"] in ("file.copied", "file.blocked") and e["file"]["name"] == name,
                         60, f"the copy event of {name}", since_seq=since)
    if held:
        assert refused == (e["kind"] == "file.blocked"), (refused, e["kind"])
    return e


def _event(agent: AgentRun, kind: str, since: int, **match) -> dict:
    return agent.wait_event(lambda e: e["kind"] == kind and all(e["details"].get(k) == v for k, v in match.items()),
                            60, f"{kind} {match}", since_seq=since)


def test_site_keyword_and_fingerprint_from_the_console_block_and_forgeries_are_refused(
        tmp_path: Path, artifacts: Path) -> None:
    if media_component_available():
        pytest.skip(media_component_available())
    mode = "after_write" if gateway_unavailable() else "held"
    held = mode == "held"
    tmp = Path(tempfile.mkdtemp(prefix="baomi-rules-"))
    agent = None
    with Collector(tmp_path / "c") as collector:
        add_users(collector)
        sec = login(collector, "sec1")
        assert create_key(sec).status_code == 201
        pem = save_public_key(sec, tmp / "secadmin-policy.pub.pem")
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'c' / 'state' / 'collector.db'}")
        try:
            with LoopMedium("exfat", size_mb=64, workdir=tmp, loop_range=range(740, 760)) as loop:
                mp = loop.mount()
                agent = AgentRun(tmp, [loop], mode=mode, log_path=artifacts / "central-rules-agent.log",
                                 extra_toml=central_toml(collector, pem))
                agent.start()
                assert _copy(agent, mp, "plan-before.txt", KEYWORD_TEXT, held)["kind"] == "file.copied"

                # 1. the site dictionary, published in the console: the same content is blocked now
                since = agent.last_seq()
                page = sec.get("/rules").text
                r = sec.post("/rules", data={"rules": SITE, "passphrase": PASSPHRASE, "csrf_token": csrf_of(page)})
                assert r.status_code == 201, r.text[:2000]
                applied = _event(agent, "rules.applied", since, version=1)
                assert applied["details"]["source"] == "collector"
                assert applied["details"]["dictionaries"] == ["site.tianqiong"]
                e = _copy(agent, mp, "plan-after.txt", KEYWORD_TEXT, held)
                assert e["kind"] == "file.blocked", e
                assert "site.tianqiong" in json.dumps(e["file"], ensure_ascii=False)

                # 2. a registered document: exactly its content is blocked, unmarked as it is
                registered = b"quarterly supplier terms, draft\n" + os.urandom(2048).hex().encode()
                since = agent.last_seq()
                page = sec.get("/rules").text
                r = sec.post("/rules/fingerprints", data={"name": "supplier-terms", "level": "secret",
                                                          "passphrase": PASSPHRASE, "csrf_token": csrf_of(page)},
                             files={"document": ("terms.txt", registered, "text/plain")})
                assert r.status_code == 201, r.text[:2000]
                _event(agent, "rules.applied", since, version=2)
                assert _copy(agent, mp, "other.txt", b"unrelated plain text\n" * 5, held)["kind"] == "file.copied"
                e = _copy(agent, mp, "terms-copy.txt", registered, held)
                assert e["kind"] == "file.blocked" and "fingerprint.exact" in json.dumps(e["file"]), e

                wait_for(lambda: "rules:2" in login(collector, "aud1").get("/hosts").text, 30,
                         "the hosts page to show the rules version the host runs")

                # 3. a rules document written straight into the database is refused
                since = agent.last_seq()
                with engine.begin() as conn:
                    row = conn.execute(sa.text("SELECT document, signature FROM rules_documents "
                                               "WHERE version = 2")).one()
                    doc = json.loads(row.document)
                    doc["version"], doc["rules"], doc["fingerprints"] = 3, "", []
                    conn.execute(sa.text("INSERT INTO rules_documents (version, issued_at, published_by, "
                                         "document, signature) VALUES (3, :t, 'sysadmin', :d, :s)"),
                                 {"t": "2026-12-01 10:00:00", "d": json.dumps(doc), "s": row.signature})
                forged = _event(agent, "policy.forged", since, document="rules", offered_version=3)
                assert forged["details"]["running_version"] == 2 and forged["severity"] == "high"
                assert _copy(agent, mp, "plan-forged.txt", KEYWORD_TEXT, held)["kind"] == "file.blocked"
                assert agent.stop() == 0, agent.log_tail()
                if not is_mount(mp):
                    loop.mount(mp)
                loop.unmount()
        finally:
            if agent is not None:
                agent.stop()
            engine.dispose()
