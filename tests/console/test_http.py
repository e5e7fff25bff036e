"""The console over plain HTTP (httpx) against a real collector process: roles,
CSRF, lock-out, session expiry, filters, export, hostile input."""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re

import pytest
import sqlalchemy as sa

from baomi.service import db
from baomi.service.console import auth
from tests.console.conftest import PASSWORDS, csrf_of, login

pytestmark = pytest.mark.timeout(120)

# page -> roles that may open it
PAGES = {
    "/dashboard": {"secadmin", "auditor"}, "/events": {"secadmin", "auditor"},
    "/events/export.csv": {"secadmin", "auditor"}, "/events/export.json": {"secadmin", "auditor"},
    "/media": {"secadmin", "auditor"}, "/policy": {"secadmin", "auditor"},
    "/hosts": {"sysadmin", "auditor"}, "/tokens": {"sysadmin", "auditor"}, "/settings": {"sysadmin", "auditor"},
    "/audit": {"auditor"},
}
ACCOUNTS = {"sysadmin": "sys1", "secadmin": "sec1", "auditor": "aud1"}


def audit_kinds(console, user: str) -> list[tuple[str, dict]]:
    E = db.events
    with console.engine.connect() as conn:
        rows = conn.execute(sa.select(E.c.kind, E.c.body).where(E.c.agent_id == "collector", E.c.user_name == user)
                            .order_by(E.c.pk)).all()
    return [(k, json.loads(b)["details"]) for k, b in rows]


@pytest.mark.parametrize("role", sorted(ACCOUNTS))
def test_each_role_sees_its_pages_and_gets_403_elsewhere(console, role):
    c = console.login(ACCOUNTS[role])
    for path, allowed in PAGES.items():
        r = c.get(path)
        if role in allowed:
            assert r.status_code == 200, (role, path, r.status_code)
        else:
            assert r.status_code == 403, (role, path, r.status_code)
    pk = console.hostile_pk
    assert c.get(f"/events/{pk}").status_code == (200 if role != "sysadmin" else 403)
    # direct POSTs, each with a valid CSRF token so only the role decides
    token = _session_csrf(c)
    r = c.post(f"/events/{pk}/triage", data={"status": "investigating", "comment": "x", "csrf_token": token})
    assert r.status_code == (303 if role == "secadmin" else 403)
    r = c.post("/tokens", data={"csrf_token": token})
    assert r.status_code == (201 if role == "sysadmin" else 403)
    if role != "auditor":
        assert any(k == "console.forbidden" for k, _ in audit_kinds(console, ACCOUNTS[role]))


def _session_csrf(c) -> str:
    # every logged-in page carries the session's token in its logout form
    for path in ("/dashboard", "/hosts"):
        r = c.get(path)
        if r.status_code == 200:
            return csrf_of(r.text)
    raise AssertionError("no page to read the csrf token from")


def test_not_logged_in_is_sent_to_login(console):
    c = console.client()
    r = c.get("/events?host=x")
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    assert c.get("/").headers["location"] == "/login"
    assert c.post("/events/1/triage", data={"status": "closed"}).status_code == 401
    assert c.post("/tokens").status_code == 401
    assert console.login("sec1").get("/").headers["location"] == "/dashboard"
    assert console.login("sys1").get("/").headers["location"] == "/hosts"


def test_post_without_csrf_is_refused(console):
    c = console.login("sec2")
    pk = console.hostile_pk
    for data in ({"status": "closed"}, {"status": "closed", "csrf_token": "forged"}):
        r = c.post(f"/events/{pk}/triage", data=data)
        assert r.status_code == 403
    with console.engine.connect() as conn:
        n = conn.execute(sa.select(sa.func.count()).select_from(db.triage)
                         .where(db.triage.c.user_name == "sec2")).scalar()
    assert n == 0
    assert c.post("/logout").status_code == 403          # logout needs the token too
    assert c.get("/events").status_code == 200           # ... so the session survived
    # login itself: a POST without the form's token is refused before the password is checked
    fresh = console.client()
    r = fresh.post("/login", data={"username": "sec2", "password": PASSWORDS["sec2"][1]})
    assert r.status_code == 403 and "baomi_session" not in r.cookies
    assert sum(k == "console.csrf_rejected" for k, _ in audit_kinds(console, "sec2")) >= 3


def test_triage_keeps_history(console):
    c = console.login("sec1")
    blocked = [r for r in console.rows if r["kind"] == "file.blocked" and r["user_name"] != "lina"]
    pk = _pk_of(console, blocked[3]["event_id"])
    token = _session_csrf(c)
    for status, comment in (("investigating", "问询当事人"), ("closed", "已确认为误拷贝,文件已删除")):
        assert c.post(f"/events/{pk}/triage", data={"status": status, "comment": comment,
                                                    "csrf_token": token}).status_code == 303
    assert c.post(f"/events/{pk}/triage", data={"status": "bogus", "csrf_token": token}).status_code == 400
    page = c.get(f"/events/{pk}").text
    assert "问询当事人" in page and "已确认为误拷贝" in page
    with console.engine.connect() as conn:
        hist = conn.execute(sa.select(db.triage.c.status).where(db.triage.c.event_pk == pk)
                            .order_by(db.triage.c.id)).scalars().all()
        status = conn.execute(sa.select(db.events.c.status).where(db.events.c.pk == pk)).scalar()
    assert hist == ["investigating", "closed"] and status == "closed"
    assert [d["to"] for k, d in audit_kinds(console, "sec1") if k == "console.triage" and d["event_pk"] == pk] \
        == ["investigating", "closed"]


def _pk_of(console, event_id: str) -> int:
    with console.engine.connect() as conn:
        return conn.execute(sa.select(db.events.c.pk).where(db.events.c.event_id == event_id)).scalar_one()


def test_lockout_after_repeated_failures(console):
    c = console.client()
    for _ in range(3):  # max_failed_logins = 3 in the test config
        r = login(c, "lockme", "wrong-password-123")
        assert r.status_code == 401
    r = login(c, "lockme", PASSWORDS["lockme"][1])   # the right password no longer helps
    assert r.status_code == 401 and "baomi_session" not in r.cookies
    kinds = [k for k, _ in audit_kinds(console, "lockme")]
    assert kinds.count("console.login_failed") == 4 and "console.lockout" in kinds
    assert "console.login" not in kinds
    with console.engine.begin() as conn:   # the lock-out ends: simulate lockout_s having passed
        conn.execute(db.users.update().where(db.users.c.name == "lockme")
                     .values(locked_until=auth.now() - dt.timedelta(seconds=1)))
    assert login(console.client(), "lockme", PASSWORDS["lockme"][1]).status_code == 303


def test_unknown_user_and_disabled_user_cannot_log_in(console):
    assert login(console.client(), "nobody", "Whatever-Pass-2026").status_code == 401
    c = console.login("sec2")
    with console.engine.begin() as conn:
        auth.set_disabled(conn, "sec2", True, by="test")
    assert c.get("/events").status_code == 303      # its session ended with it
    assert login(console.client(), "sec2", PASSWORDS["sec2"][1]).status_code == 401
    with console.engine.begin() as conn:
        auth.set_disabled(conn, "sec2", False, by="test")


def test_session_expires(console):
    c = console.login("aud1")
    assert c.get("/audit").status_code == 200
    with console.engine.begin() as conn:   # the idle limit passes: move the expiry into the past
        conn.execute(auth.sessions.update().where(auth.sessions.c.user_name == "aud1")
                     .values(expires_at=auth.now() - dt.timedelta(seconds=1)))
    r = c.get("/audit")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_logout_ends_the_session(console):
    c = console.login("aud1")
    token = _session_csrf(c)
    cookie = c.cookies.get("baomi_session")
    assert c.post("/logout", data={"csrf_token": token}).status_code == 303
    again = console.client()
    again.cookies.set("baomi_session", cookie)
    assert again.get("/dashboard").status_code == 303
    assert "console.logout" in [k for k, _ in audit_kinds(console, "aud1")]


def _expected(console, pred) -> list[str]:
    return [r["event_id"] for r in console.rows if pred(r)]


def test_export_matches_the_filter(console):
    c = console.login("aud1")
    host = "财务部-PC01"
    r = c.get("/events/export.csv", params={"host": host, "kind": "file.blocked"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    got = list(csv.DictReader(io.StringIO(r.text)))
    want = _expected(console, lambda e: e["host_name"] == host and e["kind"] == "file.blocked")
    assert len(want) > 3
    assert sorted(x["event_id"] for x in got) == sorted(want)
    assert all(x["host_name"] == host and x["kind"] == "file.blocked" for x in got)
    # hostile names cannot become spreadsheet formulas, and survive intact otherwise
    assert any(x["file_name"].startswith("<script>") for x in got)

    r = c.get("/events/export.json", params={"level": "secret", "user": "lina"})
    items = r.json()
    want = _expected(console, lambda e: e["level"] == "secret" and e["user_name"] == "lina")
    assert sorted(i["event_id"] for i in items) == sorted(want)
    assert all(i["event"]["file"]["level"] == "secret" for i in items)
    exports = [d for k, d in audit_kinds(console, "aud1") if k == "console.export"]
    assert {"format": "csv", "filter": {"host": host, "kind": "file.blocked"}}.items() <= exports[-2].items()
    assert exports[-1]["filter"] == {"level": "secret", "user": "lina"}


@pytest.mark.parametrize("params", [
    {"host": "' OR 1=1 --"}, {"q": "%' UNION SELECT password_hash FROM users --"}, {"user": "x" * 10_000}, {"host": "主机" * 3_000},
    {"level": "secret' OR '1'='1"}, {"kind": "file.blocked; DROP TABLE events"}, {"since": "yesterday"},
    {"until": "2026-13-45"}, {"cursor": "not-a-cursor"}, {"sort": "pk; DROP TABLE events"}, {"q": "\x00"},
    {"severity": "<script>alert(1)</script>"},
])
def test_hostile_filter_values_are_harmless(console, params):
    c = console.login("sec1")
    r = c.get("/events", params=params)
    assert r.status_code in (200, 400, 414, 431), r.status_code
    assert "<script>alert(1)</script>" not in r.text
    if r.status_code == 200:        # a valid but odd value simply matches nothing
        assert not re.search(r'href="/events/\d+"', r.text)
    with console.engine.connect() as conn:     # the store is intact
        assert conn.execute(sa.select(sa.func.count()).select_from(db.events)
                            .where(db.events.c.agent_id != "collector")).scalar() == len(console.rows)
    for export in ("/events/export.csv", "/events/export.json"):
        assert c.get(export, params=params).status_code in (200, 400, 414, 431)


def test_odd_event_numbers_are_not_found(console):
    c = console.login("sec1")
    for path in ("/events/0", "/events/-5", "/events/99999999999999999999999", "/events/999999"):
        assert c.get(path).status_code == 404, path
    assert c.get("/events/abc").status_code == 422
    r = c.post("/events/99999999999999999999999/triage", data={"status": "closed", "csrf_token": _session_csrf(c)})
    assert r.status_code == 404


def test_event_detail_shows_evidence_but_never_text_and_is_audited(console):
    c = console.login("sec1")
    r = c.get(f"/events/{console.hostile_pk}")
    assert r.status_code == 200
    html = r.text
    assert "<script>alert(" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;script&gt;&#34;报表&#34;.docx" in html
    assert "marking.national" in html and "cd" * 32 in html and "ab" * 32 in html
    assert "DataTraveler 3.0" in html and "60A44C413A8F" in html
    views = [d for k, d in audit_kinds(console, "sec1") if k == "console.evidence_viewed"]
    assert views and views[-1]["event_pk"] == console.hostile_pk


def test_tokens_store_only_a_hash(console):
    import hashlib
    c = console.login("sys1")
    r = c.post("/tokens", data={"csrf_token": _session_csrf(c)})
    assert r.status_code == 201
    token = re.search(r'id="new-token">([^<]+)<', r.text).group(1)
    with console.engine.connect() as conn:
        hashes = conn.execute(sa.select(db.enroll_tokens.c.token_hash)).scalars().all()
        assert hashlib.sha256(token.encode()).hexdigest() in hashes
        assert token not in hashes
    assert "console.token_created" in [k for k, _ in audit_kinds(console, "sys1")]
    assert token not in c.get("/tokens").text   # shown once only


def test_language_follows_browser_and_switch(console):
    c = console.client()
    assert "登录" in c.get("/login", headers={"Accept-Language": "zh-CN,zh;q=0.9"}).text
    assert "Log in" in c.get("/login", headers={"Accept-Language": "en-US,en;q=0.9"}).text
    r = c.get("/lang/en", params={"next": "/login"})
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert "Log in" in c.get("/login", headers={"Accept-Language": "zh-CN"}).text
    assert c.get("/lang/en", params={"next": "//evil.example/"}).headers["location"] == "/"


def _shanghai(t: dt.datetime) -> str:
    return (t.astimezone(dt.timezone.utc) + dt.timedelta(hours=8)).strftime("%Y-%m-%d %H:%M:%S")


def test_times_are_shown_in_the_offices_zone_and_exported_in_utc(console):
    """[console] time_zone = "Asia/Shanghai": pages show UTC+8 and say so; exports stay UTC."""
    hostile = next(r for r in console.rows if r["seq"] == 900000)
    c = console.login("aud1")
    detail = c.get(f"/events/{console.hostile_pk}").text
    assert _shanghai(hostile["received_at"]) + " CST" in detail
    assert _shanghai(hostile["time"]) + " CST" in detail
    listing = c.get("/events", params={"user": "lina", "kind": "file.blocked"}).text
    assert "(Asia/Shanghai)" in listing and _shanghai(hostile["received_at"]) in listing
    assert hostile["received_at"].strftime("%Y-%m-%d %H:%M:%S") not in listing.replace(
        _shanghai(hostile["received_at"]), "")
    assert "(Asia/Shanghai)" in c.get("/dashboard").text and "(Asia/Shanghai)" in c.get("/hosts").text
    got = list(csv.DictReader(io.StringIO(c.get("/events/export.csv", params={"q": "<script>"}).text)))
    assert [x["received_at"] for x in got] == [hostile["received_at"].strftime("%Y-%m-%dT%H:%M:%S.%fZ")]
    items = c.get("/events/export.json", params={"q": "<script>"}).json()
    assert items[0]["time"] == hostile["time"].strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_typed_times_are_read_in_the_offices_zone(console):
    """A bare date is the office's day: the hostile event (5 minutes old) is in today's list in
    Shanghai, whatever the date in UTC."""
    hostile = next(r for r in console.rows if r["seq"] == 900000)
    local = hostile["received_at"].astimezone(dt.timezone.utc) + dt.timedelta(hours=8)
    c = console.login("aud1")
    day = local.strftime("%Y-%m-%d")
    assert f'href="/events/{console.hostile_pk}"' in c.get("/events", params={
        "since": day, "until": day, "q": "<script>"}).text
    minute = local.replace(second=0, microsecond=0)
    after = (minute + dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M")
    assert f'href="/events/{console.hostile_pk}"' not in c.get("/events", params={
        "since": after, "q": "<script>"}).text
    assert f'href="/events/{console.hostile_pk}"' in c.get("/events", params={
        "since": minute.strftime("%Y-%m-%dT%H:%M"), "q": "<script>"}).text


def test_kinds_are_named_in_the_users_language_with_the_raw_kind(console):
    c = console.login("aud1")
    zh = c.get("/events", params={"kind": "file.blocked"}, headers={"Accept-Language": "zh-CN"}).text
    assert re.search(r'<span class="kind"[^>]*>文件拷贝被阻止</span> <small class="raw">file\.blocked</small>', zh)
    assert '<option value="medium.denied">介质被禁用</option>' in zh          # the kind field's suggestions
    c.get("/lang/en", params={"next": "/events"})
    en = c.get("/events", params={"kind": "file.blocked"}).text
    assert re.search(r'<span class="kind"[^>]*>File copy blocked</span> <small class="raw">file\.blocked</small>', en)
    detail = c.get(f"/events/{console.hostile_pk}").text
    assert "File copy blocked" in detail and "file.blocked" in detail
    assert "Evidence viewed" in c.get("/audit").text                        # the console's own kinds too


def test_only_events_that_need_handling_get_triage(console):
    heartbeat = _pk_of(console, next(r for r in console.rows if r["kind"] == "agent.heartbeat")["event_id"])
    inserted = _pk_of(console, next(r for r in console.rows if r["kind"] == "medium.inserted")["event_id"])
    blocked = _pk_of(console, next(r for r in console.rows if r["kind"] == "file.blocked")["event_id"])
    c = console.login("sec1")
    token = _session_csrf(c)
    for pk in (heartbeat, inserted):
        page = c.get(f"/events/{pk}").text
        assert 'class="triage"' not in page and "待处理" not in page and 'id="no-triage"' in page
        r = c.post(f"/events/{pk}/triage", data={"status": "closed", "comment": "x", "csrf_token": token})
        assert r.status_code == 409 and "无需处置" in r.text
        with console.engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(db.triage)
                                .where(db.triage.c.event_pk == pk)).scalar() == 0
    page = c.get(f"/events/{blocked}").text
    assert 'class="triage"' in page and "待处理" in page
    # the list: no pending badge on a heartbeat row; the status filter lists only events to handle
    rows = c.get("/events", params={"kind": "agent.heartbeat"}).text.split("<tbody>")[1]
    assert "待处理" not in rows and "status-new" not in rows
    pending = c.get("/events", params={"status": "new", "kind": "agent."}).text.split("<tbody>")[1]
    assert "agent.heartbeat" not in pending


def test_event_list_shows_the_medium(console):
    c = console.login("aud1")
    text = c.get("/events", params={"kind": "medium.inserted"}).text
    cells = re.findall(r'<td class="medium">(.*?)</td>', text, re.S)
    assert cells
    assert any("财务专用" in x and "登记号 BM-2026-0042" in x for x in cells)      # registered: its registry id
    assert any("Kingston DataTraveler 3.0" in x and "个人介质" in x for x in cells)
    hb = re.findall(r'<td class="medium">(.*?)</td>', c.get("/events", params={"kind": "agent.heartbeat"}).text, re.S)
    assert hb and all("—" in x for x in hb)
