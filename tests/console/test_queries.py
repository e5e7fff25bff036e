"""The console's queries against real SQLite and real PostgreSQL: filters return
the right rows, keyset pages cover every row exactly once, dashboard counts."""
from __future__ import annotations

import datetime as dt
import json
import zoneinfo

import pytest
import sqlalchemy as sa

from baomi.common import catalogue
from baomi.service import db
from baomi.service.console import queries, rollup
from baomi.service.own_events import insert_collector_event
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
    ({"q": "REPORT-f"}, lambda r: "report-f" in (r["file_name"] or "")),   # case does not matter
    ({"q": "表"}, lambda r: "表" in (r["file_name"] or "")),               # shorter than a trigram
    ({"q": '秘密★6'}, lambda r: "秘密★6" in (r["file_name"] or "")),
    ({"q": "不存在的文件名"}, lambda r: False),
    ({"since": "2026-11-18", "until": "2026-11-18"},
     lambda r: dt.datetime(2026, 11, 18, tzinfo=dt.timezone.utc) <= r["received_at"] < dt.datetime(2026, 11, 19, tzinfo=dt.timezone.utc)),
    ({"since": "2026-11-19T06:00:00Z", "host": "保密室-WS01"},
     lambda r: r["received_at"] >= dt.datetime(2026, 11, 19, 6, tzinfo=dt.timezone.utc) and r["host_name"] == "保密室-WS01"),
]


@pytest.mark.parametrize("params,pred", CASES)
def test_filters_return_the_right_rows(store, params, pred):
    engine, rows = store
    f = queries.parse_filter(params)
    with engine.connect() as conn:
        got = all_pages(conn, f)
    want = sorted((r for r in rows if pred(r)), key=lambda r: r["time"], reverse=True)
    assert ids(got) == [r["event_id"] for r in want]


def test_file_name_search_is_indexed(store):
    engine, rows = store
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            assert queries.fts_ready(conn)
            n = conn.exec_driver_sql("SELECT count(*) FROM events_file_name WHERE events_file_name "
                                     "MATCH '\"财务报表\"'").scalar()
            assert n == sum("财务报表" in (r["file_name"] or "") for r in rows)
            assert queries.use_fts(conn, queries.parse_filter({"q": "财务报表"}))
            assert not queries.use_fts(conn, queries.parse_filter({"q": "表"}))
        else:
            names = conn.exec_driver_sql("SELECT indexname FROM pg_indexes WHERE tablename = 'events'").scalars()
            assert "ix_events_file_name_trgm" in set(names)


def fts_complete(conn) -> bool:
    """FTS5's own check of the index against the events table (rank 1: content too)."""
    try:
        conn.exec_driver_sql("INSERT INTO events_file_name(events_file_name, rank) VALUES ('integrity-check', 1)")
    except sa.exc.DatabaseError:
        return False
    return True


def test_file_name_index_is_complete_after_batches_duplicates_and_upgrade(tmp_path):
    """SQLite: rows indexed by the old per-row trigger (schema 0003) and by batch
    (db.insert_events) after the upgrade, duplicates skipped, collector events between."""
    url = f"sqlite:///{tmp_path / 'c.db'}"
    db.upgrade(url, "0003_ingest")
    engine = db.make_engine(url)
    rows = list(seed.make_rows(300, now=NOW, days=3, seed=5))
    with engine.begin() as conn:
        conn.execute(db.events.insert(), rows[:100])          # through the trigger of 0002
    db.upgrade(url)
    with engine.begin() as conn:
        assert "events_file_name_ai" not in set(conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'trigger'").scalars())
        db.insert_events(conn, rows[100:200])
        insert_collector_event(conn, "console.login", user_name="aud1")
        db.insert_events(conn, rows[150:300], skip_duplicates=True)  # 50 stored already
    with engine.begin() as conn:
        assert fts_complete(conn)
        assert conn.execute(sa.select(sa.func.count()).select_from(db.events)).scalar() == 301
        for word in ("财务报表", "report-f"):
            n = conn.exec_driver_sql("SELECT count(*) FROM events_file_name WHERE events_file_name MATCH ?",
                                     (f'"{word}"',)).scalar()
            assert n == sum(word in (r["file_name"] or "").lower() for r in rows) > 0
        conn.execute(db.events.delete().where(db.events.c.pk <= 10))  # the delete trigger keeps it in step
        assert fts_complete(conn)
    engine.dispose()


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
    times = [r["received_at"] for r in down]   # the collector's receive order
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


def expected_dashboard(rows, start):
    day = [r for r in rows if start <= r["time"] <= NOW]
    hosts: dict[str, int] = {}
    for r in day:
        hosts[r["host_name"]] = hosts.get(r["host_name"], 0) + 1
    return {"blocked": sum(r["kind"] == "file.blocked" for r in day),
            "denied": sum(r["kind"] == "medium.denied" for r in day),
            "screenlock": sum(r["kind"] in queries.SCREENLOCK_VIOLATION_KINDS for r in day),
            "total": len(day), "top_host": max(hosts.values())}


def observed(d):
    return {"blocked": d["blocked"], "denied": d["denied"], "screenlock": d["screenlock"],
            "total": sum(sum(v.values()) for v in d["series"].values()), "top_host": d["top_hosts"][0][1]}


@pytest.mark.parametrize("period", ["24h", "7d"])
def test_dashboard_counts_live_and_rolled_up(store, period):
    engine, rows = store
    with engine.connect() as conn:
        live = queries.dashboard(conn, period, offline_after_s=300, now=NOW)
    want = expected_dashboard(rows, live["start"])
    assert want["blocked"] > 0 and observed(live) == want
    assert live["start"] == queries.period_start(NOW, period)
    assert len(live["labels"]) == (24 if period == "24h" else 7)
    assert set().union(*live["series"].values()) <= set(live["labels"])
    assert [h["host_name"] for h in live["offline_hosts"]] == ["研发中心-LT07"]

    assert rollup.refresh(engine) > 0           # now the past hours come from the rollup
    with engine.connect() as conn:
        rolled = queries.dashboard(conn, period, offline_after_s=300, now=NOW)
    assert observed(rolled) == want and rolled["series"] == live["series"]
    assert rolled["top_hosts"] == live["top_hosts"] and rolled["top_users"] == live["top_users"]

    # a host that was offline delivers an old event late: counted live, then rolled into its own hour
    late = seed.row_for(kind="file.blocked", severity="high", host="研发中心-LT07", host_class="unclassified",
                        user="liuyang", time=NOW - dt.timedelta(hours=3), seq=70_000, level="secret",
                        action="block")
    seed.insert_rows(engine, iter([late]))
    want2 = expected_dashboard(rows + [late], live["start"])
    with engine.connect() as conn:
        assert observed(queries.dashboard(conn, period, offline_after_s=300, now=NOW)) == want2
    rollup.refresh(engine)
    rollup.refresh(engine)                       # a second refresh adds nothing twice
    with engine.connect() as conn:
        assert observed(queries.dashboard(conn, period, offline_after_s=300, now=NOW)) == want2


def test_rollup_waits_for_recent_inserts(store):
    engine, _rows = store
    first = rollup.refresh(engine)
    recent = seed.row_for(kind="file.copied", severity="info", host="办公室-PC11", host_class="unclassified",
                          user="sunli", time=NOW, seq=80_000)
    recent["received_at"] = dt.datetime.now(dt.timezone.utc)   # just received: within the grace time
    seed.insert_rows(engine, iter([recent]))
    assert rollup.refresh(engine) == first
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=rollup.GRACE_S + 1)
    with engine.connect() as conn:
        top = conn.execute(sa.select(sa.func.max(db.events.c.pk))).scalar()
    assert rollup.refresh(engine, now=later) == top > first


def test_audit_trail_holds_only_console_events(store):
    engine, _ = store
    with engine.connect() as conn:
        page = queries.audit_trail(conn)
    assert [r["kind"] for r in page.rows] == ["console.login"]


SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize("params,pred", [
    # the office's days and wall-clock times (UTC+8): 18 Nov in Shanghai is 17 Nov 16:00 .. 18 Nov 16:00 UTC
    ({"since": "2026-11-18", "until": "2026-11-18"},
     lambda r: dt.datetime(2026, 11, 17, 16, tzinfo=dt.timezone.utc) <= r["received_at"]
     < dt.datetime(2026, 11, 18, 16, tzinfo=dt.timezone.utc)),
    ({"since": "2026-11-19T14:00", "until": "2026-11-19 20:30"},
     lambda r: dt.datetime(2026, 11, 19, 6, tzinfo=dt.timezone.utc) <= r["received_at"]
     <= dt.datetime(2026, 11, 19, 12, 30, tzinfo=dt.timezone.utc)),
    ({"since": "2026-11-19T06:00:00Z"},        # an explicit offset is kept
     lambda r: r["received_at"] >= dt.datetime(2026, 11, 19, 6, tzinfo=dt.timezone.utc)),
])
def test_typed_times_are_the_offices(store, params, pred):
    engine, rows = store
    with engine.connect() as conn:
        got = all_pages(conn, queries.parse_filter(params, SHANGHAI))
    want = sorted((r for r in rows if pred(r)), key=lambda r: r["time"], reverse=True)
    assert want and ids(got) == [r["event_id"] for r in want]


def test_dashboard_days_are_the_offices(store):
    engine, rows = store
    with engine.connect() as conn:
        d = queries.dashboard(conn, "7d", offline_after_s=300, now=NOW, tz=SHANGHAI)
    # NOW is 20 Nov 20:00 in Shanghai: the 7 days are 14..20 Nov there, from 13 Nov 16:00 UTC
    assert d["start"] == dt.datetime(2026, 11, 13, 16, tzinfo=dt.timezone.utc)
    assert d["labels"] == [f"2026-11-{day}" for day in range(14, 21)]
    assert observed(d) == expected_dashboard(rows, d["start"])
    with engine.connect() as conn:
        h = queries.dashboard(conn, "24h", offline_after_s=300, now=NOW, tz=SHANGHAI)
    assert h["labels"][-1] == "2026-11-20 20:00" and len(h["labels"]) == 24


def test_status_filter_lists_only_events_that_need_handling(store):
    engine, rows = store
    with engine.connect() as conn:
        got = all_pages(conn, queries.parse_filter({"status": "new"}))
    want = [r for r in rows if catalogue.needs_handling(r["kind"], r["severity"], r["action"])]
    assert sorted(ids(got)) == sorted(r["event_id"] for r in want)
    kinds = {r["kind"] for r in got}
    assert "file.blocked" in kinds and not kinds & {"agent.heartbeat", "file.copied", "medium.inserted"}


def test_listed_rows_carry_their_medium(store):
    engine, _rows = store
    with engine.connect() as conn:
        page = queries.list_events(conn, queries.EventFilter(), limit=200)
        queries.add_body_facts(conn, page.rows)
    by_kind: dict[str, list] = {}
    for r in page.rows:
        by_kind.setdefault(r["kind"], []).append(r["medium"])
    assert all(m is None for m in by_kind["agent.heartbeat"])
    media = [m for m in by_kind["file.blocked"] + by_kind["medium.inserted"]]
    assert all(m and m["label"] for m in media)
    registered = [m for m in media if m["registry_id"]]
    assert registered and all(m["registry_id"] == "BM-2026-0042" and m["label"] == "财务专用" for m in registered)
    assert any(m["class"] == "personal" and m["label"] == "Kingston DataTraveler 3.0" for m in media)
    assert queries.medium_summary(None) is None and queries.medium_summary({}) is None


def test_latest_per_host_and_the_files_held_at_rest(store):
    from tests.console import host_rows
    engine, _rows = store
    seed.insert_rows(engine, iter(host_rows.rows(NOW)))
    pc01 = seed.agent_id("财务部-PC01")
    with engine.connect() as conn:
        reports = queries.latest_of_kind(conn, "check.report")
        overview = queries.at_rest_overview(conn)
        h = queries.host_detail(conn, pc01, 300, now=NOW)
        ws01 = queries.host_detail(conn, seed.agent_id("保密室-WS01"), 300, now=NOW)
        assert queries.host_detail(conn, "no-such-agent", 300, now=NOW) is None
    assert set(reports) == {pc01} and reports[pc01]["seq"] == 800_005  # the agent's order, not arrival
    r = h["report"]
    assert (r["result"], r["problems"], r["unknown"], r["findings"]) == ("fail", 1, 1, 1)
    assert {c["id"]: c["status"] for c in r["checks"]}["at_rest"] == "problem"
    assert h["discovery"]["at_rest"] == {"top_secret": 1, "secret": 2, "confidential": 3, "internal": 4}
    assert h["discovery"]["classified"] == 6 and h["host"]["host_name"] == "财务部-PC01"
    assert ("check.report", 2) in h["counts"] and ("discovery.finished", 2) in h["counts"]  # both in the 7 days
    assert ws01["posture"]["network"] == "external" and ws01["posture"]["sharing"] == 2
    assert ws01["report"] is None and ws01["discovery"] is None
    pr = h["protection"]
    assert [(m["key"], m["mode"], m["label"], m["why"]) for m in pr["media"]] == [
        (host_rows.HELD_KEY, "held", "财务U盘", ""),
        (host_rows.WEAK_KEY, "after_write", "李四的U盘", host_rows.NO_FUSE)]   # the latest event names it
    assert (pr["held"], pr["weaker"], pr["reported"], pr["workers_reported"]) == (1, 1, True, True)
    assert pr["scan_workers"] == {"state": "partial", "user": "baomi-scan", "refused": [host_rows.NO_LANDLOCK]}
    assert ws01["protection"]["reported"] is False and ws01["protection"]["workers_reported"] is False
    assert overview["by_level"] == {"top_secret": 1, "secret": 2, "confidential": 8, "internal": 11}
    assert (overview["classified"], overview["hosts_holding"], overview["hosts_reporting"]) == (11, 2, 3)
    assert [x["host_name"] for x in overview["hosts"]] == ["财务部-PC01", "办公室-PC11"]


def test_hostile_enforcement_reports_are_bounded_and_not_believed() -> None:
    details = {"enforcement": {f"k{i}": "held" if i % 2 else {"x": 1} for i in range(100)},
               "scan_workers": {"state": "<script>", "user": ["root"], "refused": ["r" * 5000, 7] + ["x"] * 50}}
    events = [{"medium": {"key": "k1", "fs_label": "L" * 1000, "mountpoint": 5}, "details": {"why": "w"}},
              {"medium": "not a medium"}, {"medium": {"key": ["k3"]}}, {}]
    pr = queries.protection_of(details, iter(events))
    assert len(pr["media"]) == queries.MAX_MEDIA
    assert pr["media"][0] == {"key": "k0", "mode": "unknown", "label": "", "devnode": "", "mountpoint": "",
                              "medium_class": "", "why": ""}
    assert pr["media"][1]["label"] == "L" * 128 and pr["media"][1]["why"] == ""    # held: no why shown
    assert (pr["held"], pr["weaker"]) == (16, 16)
    assert pr["scan_workers"] == {"state": "unknown", "user": "", "refused": ["r" * 300, ""] + ["x"] * 8}
    assert queries.protection_of({"scan_workers": None}, iter([]))["scan_workers"] is None   # not started yet


def test_hostile_report_bodies_are_not_believed(store):
    from tests.console import host_rows
    engine, _rows = store
    row = host_rows.report_row("办公室-PC11", 800_009, NOW, {})
    body = json.loads(row["body"])
    body["details"]["checks"] = [{"id": "<b>x</b>", "status": "fine", "findings": -3, "summary": "s" * 5000},
                                 "not a check", {"id": 7}]
    body["details"]["counts"] = "many"
    row["body"] = json.dumps(body, ensure_ascii=False)
    bad_rest = host_rows.discovery_row("办公室-PC11", 800_010, NOW, None)
    body = json.loads(bad_rest["body"])
    body["details"]["at_rest"] = {"secret": -5, "top_secret": "9", "confidential": True, "internal": 2**70}
    bad_rest["body"] = json.dumps(body)
    seed.insert_rows(engine, iter([row, bad_rest]))
    with engine.connect() as conn:
        h = queries.host_detail(conn, seed.agent_id("办公室-PC11"), 300, now=NOW)
    checks = h["report"]["checks"]
    assert [(c["id"], c["status"], c["findings"], len(c["summary"])) for c in checks] == [
        ("<b>x</b>", "unknown", 0, 200), ("", "unknown", 0, 0)]
    assert h["report"]["findings"] is None
    assert h["discovery"]["at_rest"] == {"top_secret": 0, "secret": 0, "confidential": 0, "internal": 0}
