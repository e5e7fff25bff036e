"""The console in headless Debian Chromium (Playwright) against a real collector:
each role logs in and sees its pages; filters work through the form; hostile file
names are shown escaped; the audit trail shows the test's own actions.
Screenshots of the main pages go to test-artifacts/console/."""
from __future__ import annotations

import datetime as dt
import re

import pytest

from baomi.service.console.queries import period_start
from tests.console.conftest import PASSWORDS

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def page_for(browser, console):
    contexts = []

    def open_as(name: str, locale: str = "zh-CN"):
        ctx = browser.new_context(locale=locale, viewport={"width": 1366, "height": 900})
        contexts.append(ctx)
        page = ctx.new_page()
        page.set_default_timeout(20_000)
        page.goto(console.url + "/")
        assert "/login" in page.url
        page.fill("input[name=username]", name)
        page.fill("input[name=password]", PASSWORDS[name][1])
        page.click("button[type=submit]")
        page.wait_for_load_state()
        return page
    yield open_as
    for ctx in contexts:
        ctx.close()


def nav_links(page) -> list[str]:
    return [a.get_attribute("href") for a in page.query_selector_all("header nav a")]


def test_login_page_screenshot(browser, console, shots):
    ctx = browser.new_context(locale="zh-CN", viewport={"width": 1366, "height": 700})
    page = ctx.new_page()
    page.goto(console.url + "/login")
    assert page.locator("h1").inner_text() == "登录"
    page.screenshot(path=str(shots / "login.png"))
    page.fill("input[name=username]", "sec1")
    page.fill("input[name=password]", "not-the-password")
    page.click("button[type=submit]")
    assert "用户名或密码错误" in page.locator("p.error").inner_text()
    ctx.close()


def test_secadmin_dashboard_events_detail(page_for, console, shots):
    before = dt.datetime.now(dt.timezone.utc)
    page = page_for("sec1")
    after = dt.datetime.now(dt.timezone.utc)
    assert page.url.endswith("/dashboard")
    assert nav_links(page) == ["/dashboard", "/events", "/media", "/policy", "/rules", "/approvals"]
    assert page.locator("svg.chart rect").count() > 10        # the chart has bars
    tiles = page.locator(".tile .n").all_inner_texts()

    # "24h" is the 24 whole hourly buckets ending with the current one; seeded times are at
    # least 10 minutes old, so only the page's hour matters (either side if it just turned)
    def counts(now: dt.datetime) -> tuple[int, int]:
        start = period_start(now, "24h")
        return (sum(1 for r in console.rows if r["kind"] == "file.blocked" and r["time"] >= start),
                sum(1 for r in console.rows if r["kind"] == "medium.denied" and r["time"] >= start))
    expected = {counts(before), counts(after)}
    assert all(blocked > 0 for blocked, _ in expected)
    assert (int(tiles[0]), int(tiles[1])) in expected
    assert int(tiles[3]) == 1                                   # 研发中心-LT07 is offline
    assert "研发中心-LT07" in page.locator("section.panel").last.inner_text()
    page.screenshot(path=str(shots / "dashboard.png"), full_page=True)

    page.click("header nav a[href='/events']")
    page.fill("input[name=host]", "保密室-WS01")
    page.select_option("select[name=severity]", "high")
    page.click("form.filters button[type=submit]")
    page.wait_for_load_state()
    shown = page.locator("table.events tbody tr").count()
    want = [r for r in console.rows if r["host_name"] == "保密室-WS01" and r["severity"] == "high"]
    assert shown == min(len(want), 50) and shown > 0
    hosts = set(page.locator("table.events tbody tr td:nth-child(4)").all_inner_texts())
    assert hosts == {"保密室-WS01"}
    # times in the office's zone, kinds by name with the raw kind, the medium of each event
    assert "(Asia/Shanghai)" in page.locator("table.events thead").inner_text()
    kinds = page.locator("table.events tbody tr td:nth-child(3)").all_inner_texts()
    assert any(k.startswith("文件拷贝被阻止") and k.endswith("file.blocked") for k in kinds)
    media = page.locator("table.events tbody td.medium").all_inner_texts()
    assert any("个人介质" in m or "登记号" in m for m in media)
    page.screenshot(path=str(shots / "events.png"), full_page=True)

    # pagination: the next page continues where the first stopped, in time order
    page.goto(console.url + "/events")
    first = page.locator("table.events tbody tr td:first-child").all_inner_texts()
    page.click("a[rel=next]")
    second = page.locator("table.events tbody tr td:first-child").all_inner_texts()
    assert len(first) == 50 and len(second) == 50 and first[-1] >= second[0]

    # search on the file name finds the hostile one, shown as text, not run
    page.goto(console.url + "/events")
    page.fill("input[name=q]", "<script>")
    page.click("form.filters button[type=submit]")
    cell = page.locator("table.events tbody tr td.file")
    assert cell.count() == 1
    assert cell.inner_text() == "<script>alert('x')<script>\"报表\".docx"
    page.click("table.events tbody tr td:first-child a")
    page.wait_for_load_state()
    assert re.search(r"/events/\d+$", page.url)
    body = page.locator("main").inner_text()
    assert "marking.national" in body and "ab" * 32 in body and "60A44C413A8F" in body
    assert page.evaluate("document.querySelectorAll('main script').length") == 0
    page.select_option("select[name=status]", "investigating")
    page.fill("input[name=comment]", "浏览器中标记为调查中")
    page.click("form.triage button[type=submit]")
    page.wait_for_load_state()
    assert "浏览器中标记为调查中" in page.locator("table.history").inner_text()
    page.screenshot(path=str(shots / "event-detail.png"), full_page=True)

    page.goto(console.url + "/audit")   # by direct URL: refused
    assert "无权" in page.locator("main").inner_text()


def test_sysadmin_hosts_and_tokens(page_for, console, shots):
    page = page_for("sys1")
    assert page.url.endswith("/hosts")
    assert nav_links(page) == ["/hosts", "/tokens", "/settings"]
    rows = page.locator("table tbody tr")
    assert rows.count() == 6
    text = page.locator("table").inner_text()
    assert "研发中心-LT07" in text and "离线" in text and "在线" in text and "涉密计算机" in text
    page.screenshot(path=str(shots / "hosts.png"), full_page=True)
    page.click("header nav a[href='/tokens']")
    page.click("form.filters button[type=submit]")
    assert len(page.locator("#new-token").inner_text()) > 30
    for path in ("/events", "/dashboard", "/audit"):
        resp = page.goto(console.url + path)
        assert resp.status == 403


def test_auditor_sees_everything_and_the_audit_trail(page_for, console, shots):
    page = page_for("aud1", locale="en-US")
    assert nav_links(page) == ["/dashboard", "/events", "/media", "/policy", "/rules", "/approvals", "/hosts", "/tokens",
                               "/settings", "/audit"]
    page.goto(console.url + "/events?kind=file.blocked&level=top_secret")
    pk_link = page.locator("table.events tbody tr td:first-child a").first
    pk_link.click()
    page.wait_for_load_state()
    assert page.locator("form.triage").count() == 0     # the auditor changes nothing
    assert "File copy blocked" in page.locator("main").inner_text()
    page.goto(console.url + "/events?kind=agent.heartbeat")
    page.locator("table.events tbody tr td:first-child a").first.click()
    page.wait_for_load_state()
    assert page.locator("#triage").count() == 0 and page.locator("#no-triage").count() == 1
    page.goto(console.url + "/audit")
    text = page.locator("main").inner_text()
    for kind in ("console.login", "console.evidence_viewed", "console.login_failed"):
        assert kind in text, kind
    first = page.locator("table tbody tr").first.inner_text()
    assert "aud1" in first and "console.evidence_viewed" in first   # the view just made, on top
    page.goto(console.url + "/audit?user=sec1")
    users = set(page.locator("table tbody tr td:nth-child(2)").all_inner_texts())
    assert users == {"sec1"}
    assert "console.login" in page.locator("main").inner_text()
    page.screenshot(path=str(shots / "audit.png"), full_page=True)
    # switch to Chinese with the header link
    page.click("header .lang a")
    assert page.locator("h1").inner_text() == "审计记录"
    # the read-only pages render for the auditor, without any form that changes something
    for path, heading in (("/media", "介质"), ("/policy", "策略"), ("/rules", "规则"), ("/settings", "采集器设置"),
                          ("/tokens", "注册令牌"), ("/hosts", "主机")):
        resp = page.goto(console.url + path)
        assert resp.status == 200 and page.locator("h1").inner_text() == heading
        assert page.locator("main form[method=post]").count() == 0
        page.screenshot(path=str(shots / f"{path.strip('/')}-auditor.png"), full_page=True)
    page.goto(console.url + "/media")
    assert "Kingston" in page.locator("main").inner_text() and "个人介质" in page.locator("main").inner_text()


def test_english_dashboard_screenshot(page_for, console, shots):
    page = page_for("aud1", locale="en-US")
    page.goto(console.url + "/dashboard?period=7d")
    assert page.locator("h1").inner_text() == "Dashboard"
    page.screenshot(path=str(shots / "dashboard-en-7d.png"), full_page=True)
