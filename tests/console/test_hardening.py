"""Findings of an attack run on the console, each as the failure it was:
audit-trail rows altered by triage, out-of-range dates and forged cursors."""
from __future__ import annotations

import base64

import pytest
import sqlalchemy as sa

from baomi.service import db
from tests.console.conftest import csrf_of

pytestmark = pytest.mark.timeout(120)


def session_csrf(c) -> str:
    return csrf_of(c.get("/events").text)


def audit_pk(console) -> int:
    E = db.events
    with console.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.min(E.c.pk)).where(E.c.agent_id == "collector",
                                                                 E.c.kind.like("console.%"))).scalar_one()


def test_secadmin_cannot_triage_audit_trail_rows(console) -> None:
    c = console.login("sec1")
    token = session_csrf(c)
    pk = audit_pk(console)
    with console.engine.connect() as conn:
        before = conn.execute(sa.select(db.events.c.status).where(db.events.c.pk == pk)).scalar_one()
    r = c.post(f"/events/{pk}/triage", data={"status": "closed", "comment": "gone", "csrf_token": token})
    assert r.status_code == 404
    missing = c.post("/events/999999999/triage", data={"status": "closed", "comment": "gone", "csrf_token": token})
    # no hint whether the pk exists: the same page but for the path echoed in the language links
    assert missing.status_code == 404 and missing.text.replace("999999999", str(pk)) == r.text
    with console.engine.connect() as conn:
        assert conn.execute(sa.select(db.events.c.status).where(db.events.c.pk == pk)).scalar_one() == before
        assert conn.execute(sa.select(sa.func.count()).select_from(db.triage)
                            .where(db.triage.c.event_pk == pk)).scalar() == 0


def _cursor(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.mark.parametrize("path", [
    "/events?since=0001-01-01T00:00%2B01:00", "/events?until=9999-12-31", "/events?since=9999-12-31T23:59-05:00",
    "/events?until=0001-01-01", "/events/export.csv?until=9999-12-31", "/events/export.json?since=0001-01-01T00:00%2B01:00",
    "/events?cursor=" + _cursor("0001-01-01T00:00:00+01:00|5"), "/events?cursor=" + _cursor("2026-01-01T00:00:00|" + "9" * 30),
    "/events?cursor=" + _cursor("2026-01-01T00:00:00|-1"), "/events?cursor=%FF%FE",
    "/audit?cursor=" + _cursor("0001-01-01T00:00:00+01:00|5"), "/audit?cursor=" + _cursor("2026-01-01|99999999999999999999"),
])
def test_out_of_range_dates_and_forged_cursors_get_400(console, path) -> None:
    c = console.login("aud1")
    r = c.get(path)
    assert r.status_code == 400, (path, r.status_code, r.text[:200])
    assert "since" in r.text or "until" in r.text or "cursor" in r.text
