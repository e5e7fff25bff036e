"""Exactly-once storage deduplicates on (agent, seq) only: an event id that
names another event is refused and recorded (ingest.conflict), and a stored
seq re-sent with different content is recorded too; never a silent ack."""
from __future__ import annotations

from pathlib import Path

import pytest

from baomi.common import events as ev
from tests.support.collector import NO_DOCUMENTS, Collector, SigningAgent

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def collector(tmp_path: Path, database: str | None):
    with Collector(tmp_path / "c", database) as c:
        yield c


def enrolled(c: Collector, name: str = "PC") -> SigningAgent:
    a = SigningAgent(c.url)
    assert a.enroll(c.token(), name=name).status_code == 200
    return a


def conflicts(c: Collector) -> list[dict]:
    return c.stored(kind="ingest.conflict")


def rehash(a: SigningAgent, e: dict) -> dict:
    e["hash"] = ev.event_hash(e)
    a.last_hash = e["hash"]
    return e


def test_two_events_with_one_id_in_a_batch_are_not_acked_as_stored(collector: Collector) -> None:
    a = enrolled(collector)
    first = a.event()
    second = a.event()
    second["id"] = first["id"]
    rehash(a, second)
    r = a.send([first, second])
    assert r.status_code == 409, r.text
    assert r.json()["conflict"] == "id_clash"
    assert [e for e in collector.stored(agent_id=a.agent_id)] == []
    (rec,) = conflicts(collector)
    assert rec["details"]["reason"] == "id_clash" and rec["details"]["agent_id"] == a.agent_id


def test_event_id_of_another_agent_is_refused_and_recorded(collector: Collector) -> None:
    a, b = enrolled(collector, "A"), enrolled(collector, "B")
    victim = a.event()
    assert a.send([victim]).json()["stored"] == 1
    forged = b.event()
    forged["id"] = victim["id"]
    rehash(b, forged)
    r = b.send([forged])
    assert r.status_code == 409 and r.json()["conflict"] == "id_clash"
    assert len(collector.stored(agent_id=b.agent_id)) == 0
    assert [c["details"]["agent_id"] for c in conflicts(collector)] == [b.agent_id]


def test_stored_seq_resent_with_different_content_is_recorded(collector: Collector) -> None:
    a = enrolled(collector)
    e1 = a.event(file={"path": "/m/report.docx"})
    assert a.send([e1]).json() == {"acked": 1, "stored": 1, "duplicates": 0, **NO_DOCUMENTS}
    # the same seq again, other content (a rewritten history)
    a.seq, a.last_hash = 0, ""
    e1b = a.event(file={"path": "/m/other.docx"})
    r = a.send([e1b])
    assert r.status_code == 200
    assert r.json() == {"acked": 1, "stored": 0, "duplicates": 0, "conflicts": 1, **NO_DOCUMENTS}
    (rec,) = conflicts(collector)
    assert rec["details"]["reason"] == "seq_resent_different" and rec["details"]["resent"]["id"] == e1b["id"]
    # an identical re-send is a plain duplicate
    assert a.send([e1]).json() == {"acked": 1, "stored": 0, "duplicates": 1, **NO_DOCUMENTS}
    assert len(conflicts(collector)) == 1


def test_same_seq_twice_in_a_batch_with_different_content_is_refused(collector: Collector) -> None:
    a = enrolled(collector)
    e1 = a.event()
    a.seq, a.last_hash = 0, ""
    e1b = a.event(kind="file.blocked")
    r = a.send([e1, e1b])
    assert r.status_code == 409 and r.json()["conflict"] == "seq_twice"
    assert len(conflicts(collector)) == 1
