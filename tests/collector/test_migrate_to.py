"""`baomi-collector db migrate-to URL`: a real SQLite collector's events, accounts and
agents copied into a real PostgreSQL; run twice, nothing is copied twice; a collector on
PostgreSQL then serves the same events and the agents carry on where they were."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

from baomi.service import db

from tests.support.collector import Collector, SigningAgent
from tests.support.sender import chain_problems

pytestmark = pytest.mark.timeout(300)

PASSWORD = "Sec-Admin-Pass-2026"


def _sqlite_collector_with_events(folder: Path, agents: int = 2, events: int = 250) -> tuple[Collector, list]:
    c = Collector(folder)
    c.cli("db", "upgrade")
    c.cli("user", "add", "sec1", "--role", "secadmin", input=PASSWORD + "\n")
    senders = []
    with c:
        for i in range(agents):
            a = SigningAgent(c.url)
            assert a.enroll(c.token(), name=f"办公-PC{i:02d}").status_code == 200
            for start in range(0, events, 100):
                batch = [a.event("file.copied", action="audit") for _ in range(min(100, events - start))]
                assert a.send(batch).json()["acked"] == a.seq
            senders.append(a)
    return c, senders


def _note(url: str, event_id: str) -> str:
    """A triage note on one event, as the console writes it."""
    engine = db.make_engine(url)
    with engine.begin() as conn:
        pk = conn.execute(sa.select(db.events.c.pk).where(db.events.c.event_id == event_id)).scalar_one()
        conn.execute(db.triage.insert().values(event_pk=pk, status="investigating", comment="查一下",
                                               user_name="sec1", time=dt.datetime.now(dt.timezone.utc)))
    engine.dispose()
    return event_id


def _notes(url: str) -> list[tuple]:
    engine = db.make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(db.events.c.event_id, db.triage.c.status, db.triage.c.user_name)
                            .join(db.events, db.events.c.pk == db.triage.c.event_pk)).all()
    engine.dispose()
    return [tuple(r) for r in rows]


def _as_signed(stored: list[dict]) -> list[dict]:
    return sorted(({k: v for k, v in e.items() if k != "stored_at"} for e in stored), key=lambda e: e["id"])


def _agent_events(stored: list[dict]) -> list[dict]:
    return [e for e in stored if e["agent_id"] != "collector"]


def test_migrate_to_postgresql_copies_once_and_delivery_continues(tmp_path: Path, postgres_url: str) -> None:
    source, senders = _sqlite_collector_with_events(tmp_path / "sqlite")
    before = source.stored()
    noted = _note(db.default_sqlite_url(source.folder / "state"), before[-1]["id"])
    first = source.cli("db", "migrate-to", postgres_url)
    assert f"events: {len(before)}/{len(before)} read" in first.stdout, first.stdout  # progress
    assert f"done: {len(before)} event(s) copied, 0 already" in first.stdout, first.stdout
    again = source.cli("db", "migrate-to", postgres_url)
    assert f"done: 0 event(s) copied, {len(before)} already" in again.stdout, again.stdout

    target = Collector(tmp_path / "pg", postgres_url)
    assert _as_signed(target.stored()) == _as_signed(before)
    assert _notes(postgres_url) == [(noted, "investigating", "sec1")]  # once, on the same event
    with target:
        for a in senders:  # the same keys, the same chain, the next batch number: just carry on
            a.url = target.url
            batch = [a.event("file.copied", action="audit") for _ in range(50)]
            r = a.send(batch)
            assert r.status_code == 200, r.text
            assert {k: r.json()[k] for k in ("acked", "stored", "duplicates")} == \
                {"acked": a.seq, "stored": 50, "duplicates": 0}, r.text
        assert "sec1" in target.cli("user", "list").stdout  # the accounts came along
    after = target.stored()
    assert [p for a in senders for p in chain_problems(after, a.agent_id, 300)] == []
    assert len(_agent_events(after)) == 600


def test_migrate_to_refuses_a_target_that_is_not_a_copy_of_this_source(tmp_path: Path, postgres_url: str) -> None:
    first, _ = _sqlite_collector_with_events(tmp_path / "one", agents=1, events=20)
    other, _ = _sqlite_collector_with_events(tmp_path / "two", agents=1, events=20)
    first.cli("db", "migrate-to", postgres_url)
    r = other.cli("db", "migrate-to", postgres_url, check=False)
    assert r.returncode == 2 and "a copy of another collector" in r.stderr
    assert len(_agent_events(Collector(tmp_path / "pg", postgres_url).stored())) == 20  # nothing merged
    forced = other.cli("db", "migrate-to", postgres_url, "--force")
    assert "done: " in forced.stdout
    assert len(_agent_events(Collector(tmp_path / "pg", postgres_url).stored())) == 40


def test_migrate_to_refuses_a_non_empty_database_it_did_not_fill(tmp_path: Path, postgres_url: str) -> None:
    Collector(tmp_path / "pg", postgres_url).token()  # a collector in use there: one token made
    source, _ = _sqlite_collector_with_events(tmp_path / "sqlite", agents=1, events=5)
    r = source.cli("db", "migrate-to", postgres_url, check=False)
    assert r.returncode == 2 and "not empty and not a copy of this collector" in r.stderr
