"""The console's queries against real SQLite and real PostgreSQL: filters return
the right rows, keyset pages cover every row exactly once, dashboard counts."""
from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from baomi.service import db
from baomi.service.console import queries
from baomi.service.store import insert_collector_event
from tests.console import seed

pytestmark = pytest.mark.timeout(120)
NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.timezone.utc)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'c.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    db.upgrade(url)
    engine = db.make_engine(url)
    rows = list(seed.make_rows(400, now=NOW, days=5, seed=11))
    seed.insert_rows(engine, iter(rows), chunk=150)
    seed.insert_agents(engine, NOW)
    with engine.begin() as conn:
        insert_collector_event(conn, "console.login", user_name="aud1", details={"role": "auditor"})
    yield engine, rows
    engine.dispose()


def ids(page_rows) -> list[str]:
    return [r["event_id"] for r in page_rows]


def all_pages(conn, f, sort="time_desc", limit=37) -> list[dict]:
    out, cursor = [], None
    while True:
        page = queries.list_events(conn, f, cursor, sort, limit)
        out += page.rows
        if page.next_cursor is None:
            return out
        cursor = page.next_cursor


CASES = [
    ({"host": "财务部-PC01"}, lambda r: r["host_name"] == "财务部-PC01"),
    ({"kind": "file.blocked", "level": "secret"}, lambda r: r["kind"] == "file.blocked" and r["level"] == "secret"),
    ({"kind": "screenlock."}, lambda r: r["kind"].startswith("screenlock.")),
    ({"user": "lina", "action": "block"}, lambda r: r["user_name"] == "lina" and r["action"] == "block"),
    ({"severity": "high"}, lambda r: r["severity"] == "high"),
    ({"q": "财务报表"}, lambda r: "财务报表" in (r["file_name"] or "")),
    ({"q": "100%_"}, lambda r: False),                   # LIKE wildcards are literal
    ({"since": "2026-11-18", "until": "2026-11-18"},
     lambda r: dt.datetime(2026, 11, 18, tzinfo=dt.timezone.utc) <= r["time"] < dt.datetime(2026, 11, 19, tzinfo=dt.timezone.utc)),
    ({"since": "2026-11-19T06:00:00Z", "host": "保密室-WS01"},
     lambda r: r["time"] >= dt.datetime(2026, 11, 19, 6, tzinfo=dt.timezone.utc) and r["host_name"] == "保密室-WS01"),
]


@pytest.mark.parametrize("params,pred", CASES)
def test_filters_return_the_right_rows(store, params, pred):
    engine, rows = store
    f = queries.parse_filter(params)
    with engine.connect() as conn:
        got = all_pages(conn, f)
    want = sorted((r for r in rows if pred(r)), key=lambda r: r["time"], reverse=True)
    assert ids(got) == [r["event_id"] for r in want]


def test_search_by_hash(store):
    engine, rows = store
    sha = next(r["file_sha256"] for r in rows if r["file_sha256"])
    with engine.connect() as conn:
        got = all_pages(conn, queries.parse_filter({"q": sha.upper()}))
    assert sorted(ids(got)) == sorted(r["event_id"] for r in rows if r["file_sha256"] == sha)


def test_keyset_pages_cover_everything_once_both_ways(store):
    engine, rows = store
    with engine.connect() as conn:
        down = all_pages(conn, queries.EventFilter(), "time_desc", 50)
        up = all_pages(conn, queries.EventFilter(), "time_asc", 33)
    assert len(down) == len(rows) and len(set(ids(down))) == len(rows)   # the console.login is not there
    assert ids(up) == list(reversed(ids(down)))
    times = [r["time"] for r in down]
    assert times == sorted(times, reverse=True)


def test_same_time_rows_are_not_skipped(store):
    engine, _rows = store
    t = NOW - dt.timedelta(hours=1)
    same = [seed.row_for(kind="file.copied", severity="info", host="办公室-PC11", host_class="unclassified",
                         user="sunli", time=t, seq=50_000 + i) for i in range(7)]
    seed.insert_rows(engine, iter(same))
    with engine.connect() as conn:
        got = all_pages(conn, queries.parse_filter({"user": "sunli", "host": "办公室-PC11"}), limit=3)
    assert {r["event_id"] for r in same} <= set(ids(got))
    assert len(ids(got)) == len(set(ids(got)))


@pytest.mark.parametrize("params,field", [
    ({"level": "secret' OR 1=1"}, "level"), ({"severity": "urgent"}, "severity"), ({"action": "nuke"}, "action"),
    ({"kind": "a'; DROP TABLE events; --"}, "kind"), ({"since": "last week"}, "since"),
    ({"host": "h" * 300}, "host"), ({"q": "a\x00b"}, "q"), ({"status": "done"}, "status"),
])
def test_bad_filter_values_are_named(params, field):
    with pytest.raises(queries.FilterError) as err:
        queries.parse_filter(params)
    assert err.value.field == field


def test_bad_cursor_is_named(store):
    engine, _ = store
    with engine.connect() as conn, pytest.raises(queries.FilterError) as err:
        queries.list_events(conn, queries.EventFilter(), "bm90IGEgY3Vyc29y")
    assert err.value.field == "cursor"


def test_sql_looking_values_match_nothing_and_change_nothing(store):
    engine, rows = store
    with engine.connect() as conn:
        for value in ("' OR '1'='1", "x\"; DELETE FROM events; --", "%", "_"):
            assert queries.list_events(conn, queries.parse_filter({"host": value})).rows == []
        n = conn.execute(sa.select(sa.func.count()).select_from(db.events)).scalar()
    assert n == len(rows) + 1


def test_dashboard_counts(store):
    engine, rows = store
    with engine.connect() as conn:
        d = queries.dashboard(conn, "24h", offline_after_s=300, now=NOW)
        week = queries.dashboard(conn, "7d", offline_after_s=300, now=NOW)
    day = [r for r in rows if r["time"] >= NOW - dt.timedelta(hours=24)]
    assert d["blocked"] == sum(r["kind"] == "file.blocked" for r in day)
    assert d["denied"] == sum(r["kind"] == "medium.denied" for r in day)
    assert d["screenlock"] == sum(r["kind"] in queries.SCREENLOCK_VIOLATION_KINDS for r in day)
    assert sum(sum(v.values()) for v in d["series"].values()) == len(day)
    assert len(d["labels"]) in (24, 25) and set().union(*d["series"].values()) <= set(d["labels"])
    assert sum(sum(v.values()) for v in week["series"].values()) == len(rows)
    counts: dict[str, int] = {}
    for r in day:
        counts[r["host_name"]] = counts.get(r["host_name"], 0) + 1
    assert d["top_hosts"][0][1] == max(counts.values())
    assert [h["host_name"] for h in d["offline_hosts"]] == ["研发中心-LT07"]


def test_audit_trail_holds_only_console_events(store):
    engine, _ = store
    with engine.connect() as conn:
        page = queries.audit_trail(conn)
    assert [r["kind"] for r in page.rows] == ["console.login"]
