"""Malformed events and bodies are refused with 422 naming the field, never a
500: wrong types, over-long values, out-of-range numbers and deep nesting, on
SQLite and PostgreSQL; the agent's next good batch is stored."""
from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from baomi.common import events as ev
from tests.support.collector import Collector, SigningAgent

pytestmark = pytest.mark.timeout(180)




@pytest.fixture
def collector(tmp_path: Path, database: str | None):
    with Collector(tmp_path / "c", database) as c:
        yield c



def rechain(agent: SigningAgent, e: dict) -> dict:
    e["hash"] = ev.event_hash(e)
    agent.last_hash = e["hash"]
    return e


BAD = [
    ("action", lambda a: a.event(action={}), "action"),
    ("file_level_list", lambda a: a.event(file={"path": "/m/a.docx", "level": [1]}), "file.level"),
    ("heartbeat_spool_depth", lambda a: a.event("agent.heartbeat", details={"spool_depth": {}}), "spool_depth"),
    ("gap_last_seq_float", lambda a: a.event("agent.gap", details={"first_seq": 1, "last_seq": 1e20}), "last_seq"),
    ("gap_last_seq_huge", lambda a: a.event("agent.gap", details={"first_seq": 1, "last_seq": 10**20}), "last_seq"),
    ("overlong_level", lambda a: a.event(file={"path": "/m/a", "level": "x" * 300}), "file.level"),
    ("overlong_action", lambda a: a.event(action="b" * 300), "action"),
    ("overlong_sha256", lambda a: a.event(file={"path": "/m/a", "sha256": "f" * 300}), "file.sha256"),
    ("overlong_id", lambda a: {**a.event(), "id": "i" * 300}, "id"),
    ("deep_details", lambda a: a.event(details={"x": _deep(40)}), "details"),
    ("nan_idle", lambda a: a.event("session.started", session={"id": "3", "idle_s": float("inf")}), "idle_s"),
]


def _deep(n: int):
    v: object = 1
    for _ in range(n):
        v = [v]
    return v


@pytest.mark.parametrize("name,make,field", BAD, ids=[b[0] for b in BAD])
def test_malformed_event_gets_422_naming_the_field(collector: Collector, agent: SigningAgent, name, make,
                                                   field) -> None:
    bad = rechain(agent, make(agent))
    r = agent.send([bad])
    assert r.status_code == 422, (r.status_code, r.text[:300])
    assert field in r.json()["error"]
    # nothing of it stored, and the agent's next good batch goes through
    agent.seq -= 1
    agent.last_hash = bad["prev_hash"]
    r = agent.send([agent.event()])
    assert r.status_code == 200 and r.json()["stored"] == 1, r.text


def test_deeply_nested_json_gets_422_not_500(collector: Collector, agent: SigningAgent) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    r = httpx.post(f"{collector.url}/api/v1/enroll", content=b'{"token": ' + b"[" * 30_000 + b"]" * 30_000 + b"}",
                   headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text[:200]
    raw = b'{"agent_id": "' + agent.agent_id.encode() + b'", "batch": 1, "events": ' + deep + b"}"
    r = agent.post(raw)
    assert r.status_code == 422, r.text[:200]
    assert httpx.get(f"{collector.url}/api/v1/health").status_code == 200


@pytest.mark.parametrize("body,field", [
    ({"token": {}, "public_key": "x", "agent_id": "y", "host": {}}, "token"),
    ({"token": "t", "public_key": "x" * 5000, "agent_id": "y", "host": {}}, "public_key"),
    ({"token": "t", "public_key": "x", "agent_id": "y", "host": {"name": ["a"]}}, "host.name"),
    ({"token": "t", "public_key": "x", "agent_id": "y", "host": {}, "version": {"a": 1}}, "version"),
])
def test_malformed_enrollment_gets_422_naming_the_field(collector: Collector, body, field) -> None:
    r = httpx.post(f"{collector.url}/api/v1/enroll", json=body)
    assert r.status_code == 422 and field in r.json()["error"], r.text


def test_batch_counter_out_of_range_gets_422(collector: Collector, agent: SigningAgent) -> None:
    r = agent.post(agent.body([agent.event()], batch=10**20))
    assert r.status_code == 422 and "batch" in r.json()["error"], r.text


def test_well_formed_events_of_every_shape_are_stored(collector: Collector, agent: SigningAgent) -> None:
    events = [agent.event("agent.heartbeat", details={"version": "1.0", "policy_version": "p1", "spool_depth": 3,
                                                      "oldest_unsent_age_s": 1.5}),
              agent.event("file.blocked", severity="high", action="block", rule="R1",
                          file={"path": "/media/u/机密.docx", "size": 10, "sha256": "ab" * 32, "level": "secret",
                                "type": "docx", "evidence": [{"rule": "r", "zone": "body", "level": "secret",
                                                              "hash": "cd" * 32}]},
                          process={"pid": 42, "exe": "/usr/bin/cp", "comm": "cp"},
                          medium={"vendor": "0781", "serial": "S1", "level": None}),
              agent.event("session.started", session={"id": "3", "seat": "seat0", "type": "x11", "idle_s": 0})]
    r = agent.send(events)
    assert r.status_code == 200 and r.json()["stored"] == 3, r.text
