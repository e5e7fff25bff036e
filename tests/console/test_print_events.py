"""Print jobs in the console: the event list shows their printer and pages, and the
dashboard counts blocked prints (a print.job whose action is block)."""
from __future__ import annotations

import datetime as dt
import re
import subprocess

import pytest

from baomi.service import db
from baomi.service.console import queries
from tests.console import seed
from tests.console.conftest import make_console

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.timezone.utc)


def print_row(action: str, time: dt.datetime, seq: int, printer: str = "office", pages: int = 3,
              title: str = "工作方案.pdf") -> dict:
    return seed.row_for(kind="print.job", severity="high" if action == "block" else "low", host="办公室-PC11",
                        host_class="unclassified", user="sunli", time=time, seq=seq, action=action,
                        level="secret" if action == "block" else "internal",
                        rule="unclassified.printer.unregistered.secret" if action == "block" else None,
                        file={"path": title, "name": title, "level": "secret", "evidence": []},
                        details={"printer": {"name": printer, "uri": "ipp://p/ipp/print", "class": "unregistered"},
                                 "pages": pages, "copies": 2, "job_id": seq})


@pytest.fixture
def engine(tmp_path):
    url = f"sqlite:///{tmp_path / 'c.db'}"
    db.upgrade(url)
    e = db.make_engine(url)
    yield e
    e.dispose()


def test_blocked_prints_are_counted_in_the_period_and_listed_with_printer_and_pages(engine) -> None:
    rows = [print_row("block", NOW - dt.timedelta(hours=1), 1), print_row("block", NOW - dt.timedelta(hours=30), 2),
            print_row("audit", NOW - dt.timedelta(hours=2), 3, printer="hallway", pages=1)]
    rows.append(seed.row_for(kind="file.blocked", severity="high", host="办公室-PC11", host_class="unclassified",
                             user="sunli", time=NOW - dt.timedelta(hours=1), seq=4, action="block"))
    seed.insert_rows(engine, iter(rows))
    with engine.connect() as conn:
        assert queries.dashboard(conn, "24h", 300, now=NOW)["blocked_prints"] == 1
        assert queries.dashboard(conn, "7d", 300, now=NOW)["blocked_prints"] == 2
        page = queries.list_events(conn, queries.parse_filter({"kind": "print.job"}))
        queries.add_body_facts(conn, page.rows)
    facts = {r["seq"]: (r["printer"], r["pages"], r["copies"]) for r in page.rows}
    assert facts == {1: ("office", 3, 2), 2: ("office", 3, 2), 3: ("hallway", 1, 2)}


def test_the_console_shows_print_jobs_and_the_blocked_prints_tile(tmp_path, artifacts) -> None:
    console, proc = make_console(tmp_path, artifacts)
    try:
        now = dt.datetime.now(dt.timezone.utc)
        seed.insert_rows(console.engine, iter([print_row("block", now - dt.timedelta(minutes=5), 90_001, pages=7),
                                               print_row("audit", now - dt.timedelta(minutes=4), 90_002)]))
        c = console.login("aud1")
        c.get("/lang/en", params={"next": "/events"})
        html = c.get("/events", params={"kind": "print.job"}).text
        assert "printer office" in html and "7 pages" in html and "工作方案.pdf" in html
        dash = c.get("/dashboard").text
        m = re.search(r'kind=print\.job&(?:amp;)?action=block[^>]*><span class="n">(\d+)</span>Blocked prints', dash)
        assert m and int(m.group(1)) == 1, dash[:3000]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        console.engine.dispose()
