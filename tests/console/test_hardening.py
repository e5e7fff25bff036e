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


@pytest.mark.parametrize("value", ["\n=HYPERLINK(\"http://x\")", " =1+1", "\t=1", "\r=1", "\x0b=1", "=1", "+1",
                                   "-1", "@SUM(A1)", "\u3000=1"])
def test_csv_cells_starting_with_newline_or_space_are_neutralised(value) -> None:
    from baomi.service.console.routes.events import _csv_cell
    assert _csv_cell(value) == "'" + value
    assert _csv_cell("报告.docx") == "报告.docx" and _csv_cell(None) == "" and _csv_cell(5) == 5


def test_login_csrf_rejects_an_attacker_chosen_pair(console) -> None:
    c = console.client()
    c.cookies.set("baomi_login_csrf", "attacker-chosen-value")
    r = c.post("/login", data={"username": "sec1", "password": "Sec-Admin-Pass-2026",
                               "csrf_token": "attacker-chosen-value"})
    assert r.status_code == 403 and "baomi_session" not in r.cookies
    # a well-formed token with a wrong MAC, or one expired, is refused too
    forged = "nonce.9999999999." + "0" * 43
    c.cookies.set("baomi_login_csrf", forged)
    assert c.post("/login", data={"username": "sec1", "password": "Sec-Admin-Pass-2026",
                                  "csrf_token": forged}).status_code == 403
    assert console.login("sec1")   # the server's own token still works


def test_sessions_with_short_ttl_still_extend(tmp_path, monkeypatch) -> None:
    import datetime as dt

    from baomi.service.config import ConsoleSection
    from baomi.service.console import auth
    url = f"sqlite:///{tmp_path / 'c.db'}"
    db.upgrade(url)
    engine = db.make_engine(url)
    cfg = ConsoleSection(session_ttl_s=30)
    with engine.begin() as conn:
        auth.add_user(conn, "short", "auditor", "Brief-Ttl-Pass-2026")
    token = auth.login(engine, cfg, "short", "Brief-Ttl-Pass-2026", "127.0.0.1").token
    t0 = auth.now()
    for step in range(1, 7):  # active every 20 s for two minutes: the 30 s session keeps sliding
        monkeypatch.setattr(auth, "now", lambda step=step: t0 + dt.timedelta(seconds=20 * step))
        assert auth.lookup(engine, cfg, token) is not None, f"expired after {20 * step} s of activity"
    monkeypatch.setattr(auth, "now", lambda: t0 + dt.timedelta(seconds=20 * 6 + 31))
    assert auth.lookup(engine, cfg, token) is None  # idle past the ttl: gone
    engine.dispose()


def test_console_orders_by_receive_time_and_marks_clock_skew(console) -> None:
    """An agent that dates its events in the past or future cannot move them in the console."""
    import datetime as dt
    import uuid

    from tests.console import seed
    now = dt.datetime.now(dt.timezone.utc)
    row = seed.row_for(kind="file.copied", severity="info", host="办公室-PC11", host_class="unclassified",
                       user="skewtest", time=dt.datetime(2001, 1, 1, tzinfo=dt.timezone.utc), seq=900_000)
    row.update(received_at=now, event_id=str(uuid.uuid4()))
    seed.insert_rows(console.engine, iter([row]))
    try:
        c = console.login("aud1")
        today = now.strftime("%Y-%m-%d")
        page = c.get("/events", params={"user": "skewtest", "since": today})
        assert page.status_code == 200 and "2001-01-01 08:00:00" in page.text   # the agent's time, in Shanghai
        assert "clock skew" in page.text.lower() or "时钟偏差" in page.text
        assert "skewtest" not in c.get("/events", params={"user": "skewtest", "until": "2001-01-02"}).text.split(
            "<tbody>")[1]
    finally:  # the session's console keeps exactly its seeded events for the other tests
        with console.engine.begin() as conn:
            conn.execute(db.events.delete().where(db.events.c.event_id == row["event_id"]))


@pytest.mark.parametrize("value", ["Asia/Shangai", "CST+8", "../../etc/passwd", "/usr/share/zoneinfo/UTC"])
def test_a_bad_time_zone_is_a_config_error_naming_key_and_value(tmp_path, value) -> None:
    from baomi.common.tomlconf import ConfigError
    from baomi.service import config
    path = tmp_path / "collector.toml"
    path.write_text(f'[console]\ntime_zone = "{value}"\n')
    with pytest.raises(ConfigError) as err:
        config.load(path)
    assert err.value.key == "console.time_zone" and value in str(err.value)


def test_the_time_zone_defaults_to_the_servers(tmp_path, monkeypatch) -> None:
    import datetime as dt

    from baomi.service import config
    from baomi.service.console import times
    path = tmp_path / "collector.toml"
    path.write_text("")
    assert config.load(path).console.time_zone == ""
    monkeypatch.setenv("TZ", "Europe/Berlin")
    tz = times.office_zone("")
    assert times.zone_name(tz) == "Europe/Berlin"
    assert times.zone_name(times.office_zone("Asia/Shanghai")) == "Asia/Shanghai"
    t = dt.datetime(2026, 12, 1, 6, 3, 12, tzinfo=dt.timezone.utc)
    assert times.shown(t, times.office_zone("Asia/Shanghai"), zone=True) == "2026-12-01 14:03:12 CST"
    assert times.shown(t, tz) == "2026-12-01 07:03:12" and times.shown(None, tz) == ""
