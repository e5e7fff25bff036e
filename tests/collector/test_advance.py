"""The contiguous watermark advances incrementally: a hole left open does not
make every later batch re-read what is stored past it, and every open hole is
reported (once), not only the first."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from baomi.service import db
from baomi.service.enroll import create_token, enroll
from baomi.service.ingest import Ingest
from tests.support.collector import SigningAgent

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def store(tmp_path: Path, request):
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else \
        f"sqlite:///{tmp_path / 'c.db'}"
    db.upgrade(url)
    engine = db.make_engine(url)
    agent = SigningAgent("http://unused")
    token, _ = create_token(engine, 3600)
    enroll(engine, {"token": token, "public_key": base64.b64encode(agent.identity.public).decode(),
                    "agent_id": agent.agent_id, "host": {"name": "PC", "class": "unclassified"}})
    yield Ingest(engine, 8 << 20, 256 << 10), agent
    engine.dispose()


def deliver(ingest: Ingest, agent: SigningAgent, events: list[dict]):
    raw = agent.body(events)
    sig = base64.b64encode(agent.identity.sign(raw)).decode()
    return ingest.store(ingest.verify(raw, agent.agent_id, sig))


def gaps(ingest: Ingest) -> list[dict]:
    E = db.events
    with ingest.engine.connect() as conn:
        return [json.loads(b)["details"] for b in conn.execute(
            sa.select(E.c.body).where(E.c.kind == "chain.gap").order_by(E.c.pk)).scalars()]


class _CountingJson:
    """Stands in for the ingest module's json: counts stored bodies decoded again."""

    def __init__(self) -> None:
        self.loads_calls = 0

    def __getattr__(self, name: str):
        return getattr(json, name)

    def loads(self, *args, **kwargs):
        self.loads_calls += 1
        return json.loads(*args, **kwargs)


@pytest.mark.parametrize("store", ["sqlite", "postgresql"], indirect=True)
def test_ingest_does_not_slow_down_while_a_hole_stays_open(store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: each batch re-read every stored event past an open hole (quadratic). Measured as
    work, not time: the stored events a batch decodes again must not grow with the events stored."""
    import baomi.service.ingest as ingest_module
    counting = _CountingJson()
    monkeypatch.setattr(ingest_module, "json", counting)
    ingest, agent = store
    deliver(ingest, agent, [agent.event()])
    agent.event()  # seq 2 is never delivered: the hole stays open
    reread = []
    for _ in range(60):
        batch = [agent.event() for _ in range(200)]
        before = counting.loads_calls
        result = deliver(ingest, agent, batch)
        reread.append(counting.loads_calls - before)
        assert result.acked == 1 and result.stored == 200
    assert max(reread[-10:]) <= max(reread[:10]), f"stored events re-read per batch grew: {reread}"
    assert len(gaps(ingest)) == 1
    # the hole filled: the watermark passes all 12,000 stored events at once, links checked
    agent.seq, agent.last_hash = 1, _hash_of_seq(ingest, agent, 1)
    two = agent.event()
    result = deliver(ingest, agent, [two])
    assert result.acked == 12002


def _hash_of_seq(ingest: Ingest, agent: SigningAgent, seq: int) -> str:
    E = db.events
    with ingest.engine.connect() as conn:
        return json.loads(conn.execute(sa.select(E.c.body).where(E.c.agent_id == agent.agent_id,
                                                                 E.c.seq == seq)).scalar_one())["hash"]


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_every_open_gap_is_reported_not_only_the_first(store) -> None:
    ingest, agent = store
    e = [agent.event() for _ in range(10)]
    assert deliver(ingest, agent, [e[0], e[1], e[4], e[7]]).acked == 2
    assert [(g["first_missing"], g["last_missing"]) for g in gaps(ingest)] == [(3, 4), (6, 7)]
    assert deliver(ingest, agent, [e[9]]).acked == 2
    assert [(g["first_missing"], g["last_missing"]) for g in gaps(ingest)] == [(3, 4), (6, 7), (9, 9)]
    # filling them moves the watermark over everything, without new reports
    assert deliver(ingest, agent, [e[2], e[3], e[5], e[6], e[8]]).acked == 10
    assert len(gaps(ingest)) == 3
    with ingest.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(db.events)
                            .where(db.events.c.kind == "chain.break")).scalar() == 0


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_announced_drop_travelling_ahead_is_not_a_hole(store) -> None:
    ingest, agent = store
    e = [agent.event() for _ in range(5)]
    gap = agent.event("agent.gap", severity="high", details={"first_seq": 3, "last_seq": 4, "count": 2,
                                                             "reason": "spool_full"})
    after = agent.event()
    assert deliver(ingest, agent, [e[0], e[1], gap]).acked == 4    # the gap record before seq 5
    assert gaps(ingest) == []                                        # is no hole by itself
    assert deliver(ingest, agent, [after]).acked == 4                # but seq 7 past a missing 5 is
    assert [(g["first_missing"], g["last_missing"]) for g in gaps(ingest)] == [(5, 5)]
    assert deliver(ingest, agent, [e[4]]).acked == 7
