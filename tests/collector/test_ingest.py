"""The ingest API against a real collector process on SQLite and PostgreSQL:
enrollment, every rejection (nothing stored), exactly-once storage, and the
chain checks that turn tampering and holes into security events."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from baomi.common import events as ev
from baomi.agent.agent_key import Identity
from tests.support.collector import NO_DOCUMENTS, Collector, SigningAgent

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def collector(tmp_path: Path, database: str | None):
    with Collector(tmp_path / "c", database, extra="max_batch_bytes = 200000\nmax_event_bytes = 20000") as c:
        yield c



def kinds(c: Collector, prefix: str) -> list[dict]:
    return [e for e in c.stored() if e["kind"].startswith(prefix)]


def test_enrollment_tokens_are_single_use_and_expire(collector: Collector) -> None:
    token = collector.token()
    a, b = SigningAgent(collector.url), SigningAgent(collector.url)
    assert a.enroll(token).status_code == 200
    r = b.enroll(token)
    assert r.status_code == 401 and "already used" in r.json()["error"]
    assert b.enroll("not-a-token").status_code == 401
    short = collector.token(ttl=1)
    time.sleep(2.1)
    r = b.enroll(short)
    assert r.status_code == 401 and "expired" in r.json()["error"]
    r = httpx.post(f"{collector.url}/api/v1/enroll", json={"token": collector.token(), "public_key": "AAAA",
                                                             "agent_id": "x", "host": {}})
    assert r.status_code == 400
    # the same key may enroll again with a fresh token (a reinstalled agent) once the sysadmin approved it
    assert a.enroll(collector.token()).status_code == 409
    collector.cli("agents", "approve", a.agent_id)
    assert a.enroll(collector.token()).status_code == 200
    assert len(kinds(collector, "agent.enrolled")) == 2


def test_batches_are_stored_once_with_query_columns(collector: Collector, agent: SigningAgent) -> None:
    events = [agent.event("file.blocked", severity="high", action="block",
                          file={"path": "/media/u/出差/机密.docx", "sha256": "ab" * 32, "level": "secret"})
              for _ in range(5)]
    r = agent.send(events)
    assert r.json() == {"acked": 5, "stored": 5, "duplicates": 0, **NO_DOCUMENTS}
    r = agent.send(events[2:] + [agent.event()])  # a retry after a lost answer, plus one new
    assert r.json() == {"acked": 6, "stored": 1, "duplicates": 3, **NO_DOCUMENTS}
    stored = collector.stored(agent.agent_id)
    assert [e["seq"] for e in stored] == [1, 2, 3, 4, 5, 6]
    assert ev.verify_chain([{k: v for k, v in e.items() if k != "stored_at"} for e in stored]) is None
    csv = collector.cli("events", "--csv", "--kind", "file.blocked").stdout.splitlines()
    assert csv[0].startswith("id,agent_id,seq") and len(csv) == 6
    assert "机密.docx" in csv[1] and ",secret,block," in csv[1] and "测试-PC01" in csv[1]


def test_rejections_store_nothing(collector: Collector, agent: SigningAgent) -> None:
    stranger = SigningAgent(collector.url)
    cases = [
        (stranger.send([stranger.event()]), 401),
        (agent.post(agent.body([agent.event()]), sign_with=Identity(Ed25519PrivateKey.generate())), 403),
        (agent.post(b"{not json", ), 400),
        (agent.post(json.dumps({"agent_id": agent.agent_id, "batch": 99, "events": "x"}).encode()), 400),
        (agent.post(agent.body([dict(agent.event(), severity="apocalyptic")])), 422),
        (agent.post(agent.body([dict(agent.event(), extra=1)])), 422),
        (agent.post(agent.body([agent.event(details={"blob": "x" * 30000})])), 413),
        (agent.post(agent.body([agent.event(details={"blob": "x" * 15000}) for _ in range(20)])), 413),
        (agent.post(agent.body([agent.event()]), agent_header=stranger.agent_id), 401),
    ]
    for response, status in cases:
        assert response.status_code == status, (status, response.text)
        assert "error" in response.json()
    assert collector.stored(agent.agent_id) == []
    ok = SigningAgent(collector.url, agent.identity)
    ok.batch = 100
    assert ok.send([ok.event()]).status_code == 200
    replay = ok.post(ok.body([ok.event()], batch=100))
    assert replay.status_code == 409 and replay.json()["last_batch"] == 101
    assert len(collector.stored(agent.agent_id)) == 1


def test_tampering_and_holes_become_security_events(collector: Collector, agent: SigningAgent) -> None:
    e1, e2 = agent.event(), agent.event()
    e2 = dict(e2, user={"uid": 0, "name": "root", "session": None})  # edited after hashing
    assert agent.send([e1, e2]).status_code == 200
    breaks = kinds(collector, "chain.break")
    assert len(breaks) == 1 and breaks[0]["details"]["seq"] == 2 and breaks[0]["severity"] == "high"
    e3, e4, e5 = agent.event(), agent.event(), agent.event()
    r = agent.send([e5])  # 3 and 4 not (yet) delivered
    assert r.json()["acked"] == 2
    r = agent.send([agent.event()])  # still missing: the hole is reported once, not per batch
    gaps = kinds(collector, "chain.gap")
    assert len(gaps) == 1 and gaps[0]["details"]["first_missing"] == 3
    assert agent.send([e3, e4]).json()["acked"] == 6


def test_announced_drops_are_not_a_chain_break(collector: Collector, agent: SigningAgent) -> None:
    e = [agent.event() for _ in range(5)]
    gap = agent.event("agent.gap", severity="high",
                      details={"first_seq": 3, "last_seq": 4, "count": 2, "reason": "spool_full"})
    r = agent.send([e[0], e[1], e[4], gap, agent.event()])
    assert r.json()["acked"] == 7
    assert kinds(collector, "chain.") == []


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_two_collectors_on_one_postgresql_store_once(tmp_path: Path, database: str) -> None:
    with Collector(tmp_path / "a", database) as a, Collector(tmp_path / "b", database) as b:
        agent = SigningAgent(a.url)
        assert agent.enroll(a.token()).status_code == 200
        events = [agent.event() for _ in range(300)]
        results: list[httpx.Response] = []

        def send(url: str, batch: int) -> None:
            raw = agent.body(events, batch=batch)
            results.append(SigningAgent(url, agent.identity).post(raw))
        threads = [threading.Thread(target=send, args=(c.url, n)) for n, c in enumerate([a, b, a, b], 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert all(r.status_code in (200, 409) for r in results), [r.text for r in results]
        stored = a.stored(agent.agent_id)
        assert sorted(e["seq"] for e in stored) == list(range(1, 301))


def test_offline_and_back_online(tmp_path: Path) -> None:
    with Collector(tmp_path / "c", extra="offline_after_s = 2") as c:
        agent = SigningAgent(c.url)
        agent.enroll(c.token(), name="财务部-PC07")
        assert agent.send([agent.event()]).status_code == 200
        deadline = time.monotonic() + 30
        while not kinds(c, "host.offline") and time.monotonic() < deadline:
            time.sleep(0.5)
        off = kinds(c, "host.offline")
        assert len(off) == 1 and off[0]["host"]["name"] == "财务部-PC07"
        row = json.loads(c.cli("agents", "--json").stdout.splitlines()[0])
        assert row["online"] is False and row["host"] == "财务部-PC07"
        assert agent.send([agent.event("agent.heartbeat", details={"version": "9.9", "policy_version": "p1",
                                                                   "spool_depth": 7, "oldest_unsent_age_s": 1.5})]).status_code == 200
        assert len(kinds(c, "host.online")) == 1
        row = json.loads(c.cli("agents", "--json").stdout.splitlines()[0])
        # on a loaded machine the command may start after offline_after_s has passed again:
        # then the monitor must have said so with a second host.offline
        assert row["online"] is True or len(kinds(c, "host.offline")) == 2
        assert row["spool_depth"] == 7 and row["version"] == "9.9"


def test_the_host_list_keeps_how_the_latest_heartbeat_says_the_host_protects(tmp_path: Path) -> None:
    """The agents table keeps, from each heartbeat, how many media are not held and the scan
    workers' state; an older agent's heartbeat (neither reported) leaves them unknown."""
    with Collector(tmp_path / "c") as c:
        agent = SigningAgent(c.url)
        agent.enroll(c.token(), name="财务部-PC08")

        def listed(details: dict) -> dict:
            assert agent.send([agent.event("agent.heartbeat", details=details)]).status_code == 200
            return json.loads(c.cli("agents", "--json").stdout.splitlines()[0])

        row = listed({"version": "0.0.9", "spool_depth": 0})
        assert (row["weaker_media"], row["scan_workers"]) == (None, None)
        row = listed({"enforcement": {"sdb1-a": "held", "sdc1-b": "after_write", "sdd1-c": "after_write"},
                      "scan_workers": {"state": "root", "user": None, "uid": 0, "refused": []}})
        assert (row["weaker_media"], row["scan_workers"]) == (2, "root")
        assert "WEAKER" in c.cli("agents").stdout
        row = listed({"enforcement": {"sdb1-a": "held"}, "scan_workers": None})
        assert (row["weaker_media"], row["scan_workers"]) == (0, "not_started")
        row = listed({"enforcement": {"sdb1-a": "held"}, "scan_workers": {"state": "fine, trust me"}})
        assert row["scan_workers"] == "unknown"       # the agent's word, not believed past the known states
        row = listed({"enforcement": {}, "scan_workers": {"state": "confined", "user": "baomi-scan", "uid": 998,
                                                          "refused": []}})
        assert (row["weaker_media"], row["scan_workers"]) == (0, "confined")
        assert "WEAKER" not in c.cli("agents").stdout


def test_token_commands(tmp_path: Path) -> None:
    c = Collector(tmp_path / "c")
    token = c.token()
    assert len(token) >= 40 and "\n" not in token
    listing = c.cli("token", "list").stdout
    assert "unused" in listing and token not in listing
    prefix = listing.split()[0]
    assert c.cli("token", "revoke", prefix).returncode == 0
    assert "expired" in c.cli("token", "list").stdout
    assert c.cli("token", "revoke", "zzzzzzzz", check=False).returncode == 1
    with c:
        assert SigningAgent(c.url).enroll(token).status_code == 401
