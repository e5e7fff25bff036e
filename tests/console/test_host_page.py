"""One host's page over HTTP against a real collector process: its latest self-inspection report
(not an older one delivered late), the classified files it holds at rest by level, its posture;
how it enforces copies to each attached medium and how confined its scan workers run; the
dashboard's tile with the totals across hosts; the system administrator sees health only."""
from __future__ import annotations

import datetime as dt
import re
import subprocess
import zoneinfo

import pytest

from baomi.service import db
from tests.console import host_rows, seed
from tests.console.conftest import PASSWORDS, TIME_ZONE, make_console

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def console(tmp_path_factory, artifacts):
    c, proc = make_console(tmp_path_factory.mktemp("host-page"), artifacts)
    now = dt.datetime.now(dt.timezone.utc)
    seed.insert_rows(c.engine, iter(host_rows.rows(now)))
    with c.engine.begin() as conn:   # what ingest keeps of the latest heartbeats (tests/collector/test_ingest.py)
        for host, weaker, scan in (("财务部-PC01", 1, "partial"), ("办公室-PC11", 0, "confined")):
            conn.execute(db.agents.update().where(db.agents.c.agent_id == seed.agent_id(host))
                         .values(weaker_media=weaker, scan_workers=scan))
    c.now = now
    try:
        yield c
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        c.engine.dispose()


def _cells(html: str, attr: str) -> dict[str, str]:
    return dict(re.findall(rf'data-{attr}="([^"]+)"[^>]*>([^<]*)<', html))


def test_the_host_page_shows_the_latest_report_and_the_files_held_at_rest(console) -> None:
    c = console.login("aud1")
    c.get("/lang/en", params={"next": "/hosts"})
    pc01 = seed.agent_id("财务部-PC01")
    assert f'href="/hosts/{pc01}"' in c.get("/hosts").text  # the list links each host
    r = c.get(f"/hosts/{pc01}")
    assert r.status_code == 200
    html = r.text
    report = html[html.index('id="report"'):html.index('id="counts"')]
    office = zoneinfo.ZoneInfo(TIME_ZONE)   # pages show the office's time
    newer = (console.now - dt.timedelta(hours=1)).astimezone(office).strftime("%Y-%m-%d %H:%M:%S")
    older = (console.now - dt.timedelta(days=3)).astimezone(office).strftime("%Y-%m-%d %H:%M:%S")
    assert newer in report and older not in report
    assert 'data-problems="1"' in report and "Fail" in report
    statuses = dict(re.findall(r'data-check="([a-z_]+)" data-status="([a-z]+)"', report))
    assert statuses == {**{k: "ok" for k in host_rows.CHECKS}, "at_rest": "problem", "passwords": "unknown"}
    assert "classified_file (/home/li/方案.docx)" in report and "旧报告U盘" not in report
    assert "Classified files at rest" in report  # the section's name, not its id
    at_rest = html[html.index('id="at-rest"'):html.index('id="report"')]
    assert _cells(at_rest, "level") == {"top_secret": "1", "secret": "2", "confidential": "3", "internal": "4"}
    assert "Top Secret" in at_rest and "Internal" in at_rest
    counts = html[html.index('id="counts"'):]
    assert "Self-inspection report" in counts and "kind=check.report" in counts

    zh = console.login("sec1").get(f"/hosts/{pc01}").text  # the security administrator too, in Chinese
    assert "保密自查报告" in zh and "绝密" in zh and "机密" in zh and "秘密" in zh and "内部" in zh


def test_the_whole_report_attached_to_the_latest_check_report_downloads_as_json(console) -> None:
    c = console.login("aud1")
    pc01, pc11 = seed.agent_id("财务部-PC01"), seed.agent_id("办公室-PC11")
    assert f'href="/hosts/{pc01}/check.json"' in c.get(f"/hosts/{pc01}").text
    r = c.get(f"/hosts/{pc01}/check.json")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert r.json() == host_rows.WHOLE_REPORT
    assert c.get(f"/hosts/{pc11}/check.json").status_code == 404       # no report from that host
    assert 'check.json' not in c.get(f"/hosts/{pc11}").text
    assert console.login("sys1").get(f"/hosts/{pc01}/check.json").status_code == 403   # security content


def test_a_classified_host_shows_its_posture_and_no_discovery(console) -> None:
    html = console.login("aud1").get(f"/hosts/{seed.agent_id('保密室-WS01')}").text
    posture = html[html.index('id="posture"'):html.index('id="at-rest"')]
    assert 'data-network="external"' in posture and "198.51.100.10:8443" in posture
    assert "违规外联" in posture
    assert "尚未上报保密自查报告" in html and "尚未上报涉密文件检查" in html
    old_agent = console.login("aud1").get(f"/hosts/{seed.agent_id('财务部-PC02')}").text
    assert "不上报按密级的统计" in old_agent


def _panel(html: str, name: str) -> str:
    part = html[html.index(f'id="{name}"'):]
    return part[:part.index("</section>")]


def test_the_host_page_names_the_media_in_the_weaker_mode_and_how_the_scan_workers_run(console) -> None:
    c = console.login("aud1")
    c.get("/lang/en", params={"next": "/hosts"})
    panel = _panel(c.get(f"/hosts/{seed.agent_id('财务部-PC01')}").text, "protection")
    assert 'data-state="partial"' in panel and "Partly confined" in panel and host_rows.NO_LANDLOCK in panel
    assert 'data-held="1" data-weaker="1"' in panel and "held 1 · weaker mode 1" in panel
    modes = dict(re.findall(r'data-medium="([^"]+)" data-mode="([a-z_]+)"', panel))
    assert modes == {host_rows.HELD_KEY: "held", host_rows.WEAK_KEY: "after_write"}
    weak = panel[panel.index(f'data-medium="{host_rows.WEAK_KEY}"'):]
    weak = weak[:weak.index("</tr>")]
    assert "李四的U盘" in weak and "/media/li/李四的U盘" in weak and host_rows.NO_FUSE in weak
    assert "After the write" in weak and "旧标签" not in panel       # named by its latest enforce.mode
    assert "kind=enforce.mode" in panel

    zh = _panel(console.login("sec1").get(f"/hosts/{seed.agent_id('财务部-PC01')}").text, "protection")
    assert "部分隔离" in zh and "写入后检查(较弱)" in zh and "写入前检查" in zh and "个人介质" in zh
    old = _panel(console.login("aud1").get(f"/hosts/{seed.agent_id('保密室-WS01')}").text, "protection")
    assert "不上报拷贝管控方式" in old and "不上报扫描进程的隔离情况" in old


def test_the_host_list_finds_the_hosts_with_weaker_protection(console) -> None:
    c = console.login("sys1")
    c.get("/lang/en", params={"next": "/hosts"})
    html = c.get("/hosts").text
    assert 'data-weaker="1"' in html and "1 hosts with weaker protection" in html and 'href="/hosts?weaker=1"' in html
    rows = {name: row for row in html.split("<tr>")[1:]
            for name in re.findall(r'<a href="/hosts/[^"]+">([^<]+)</a>', row)}
    assert 'data-protection="weaker"' in rows["财务部-PC01"] and "1 media after the write" in rows["财务部-PC01"]
    assert "scan workers partly confined" in rows["财务部-PC01"]
    assert 'data-protection="ok"' in rows["办公室-PC11"] and ">OK<" in rows["办公室-PC11"]
    assert 'data-protection=""' in rows["研发中心-LT07"]          # an agent that does not say
    only = c.get("/hosts", params={"weaker": "1"}).text
    assert re.findall(r'<a href="/hosts/[^"]+">([^<]+)</a>', only) == ["财务部-PC01"]
    assert 'href="/hosts">All hosts' in only


def test_the_system_administrator_sees_health_only_and_unknown_hosts_are_404(console) -> None:
    c = console.login("sys1")
    html = c.get(f"/hosts/{seed.agent_id('财务部-PC01')}").text
    assert 'id="health"' in html and "0.1.0" in html
    protection = _panel(html, "protection")   # how it enforces is health; which sticks a user has is not
    assert 'data-weaker="1"' in protection and 'data-state="partial"' in protection
    assert "李四的U盘" not in html and "data-medium=" not in html
    for section in ('id="report"', 'id="at-rest"', 'id="posture"', 'id="counts"'):
        assert section not in html
    assert c.get("/hosts/no-such-agent").status_code == 404
    assert c.get("/hosts/" + "a" * 300).status_code == 404
    assert console.client().get(f"/hosts/{seed.agent_id('财务部-PC01')}").status_code == 303  # login first


def test_the_dashboard_tile_totals_the_files_held_at_rest(console) -> None:
    c = console.login("aud1")
    c.get("/lang/en", params={"next": "/dashboard"})
    html = c.get("/dashboard").text
    tile = html[html.index('id="at-rest-tile"'):]
    tile = tile[:tile.index("</a>")]
    assert re.search(r'<span class="n">11</span>Classified files at rest', tile), tile
    assert 'data-hosts="2"' in tile and "on 2 of 3 hosts" in tile  # 研发中心-LT07 holds internal files only
    assert _cells(tile, "level") == {"top_secret": "Top Secret 1", "secret": "Secret 2",
                                     "confidential": "Confidential 8", "internal": "Internal 11"}
    panel = html[html.index('id="at-rest"'):]
    panel = panel[:panel.index("</section>")]
    assert panel.index("财务部-PC01") < panel.index("办公室-PC11") and "研发中心-LT07" not in panel
    assert f'href="/hosts/{seed.agent_id("办公室-PC11")}"' in panel


def test_the_dashboard_lists_the_hosts_with_weaker_protection_for_the_security_administrator(console) -> None:
    c = console.login("sec1")       # who has no host list to filter
    c.get("/lang/en", params={"next": "/dashboard"})
    html = c.get("/dashboard").text
    tile = html[html.rindex("<a ", 0, html.index('id="weaker-tile"')):]
    tile = tile[:tile.index("</a>")]
    assert 'class="tile bad"' in tile and '<span class="n">1</span>Hosts with weaker protection' in tile
    panel = _panel(html, "weaker-hosts")
    assert f'href="/hosts/{seed.agent_id("财务部-PC01")}#protection"' in panel
    assert "1 media after the write · scan workers partly confined" in panel
    assert "办公室-PC11" not in panel and "研发中心-LT07" not in panel
    zh = _panel(console.login("aud1").get("/dashboard").text, "weaker-hosts")
    assert "防护较弱的主机" in zh and "财务部-PC01" in zh


def test_screenshots_of_the_host_page_and_the_dashboard(browser, console, shots) -> None:
    ctx = browser.new_context(locale="zh-CN", viewport={"width": 1366, "height": 1100})
    try:
        page = ctx.new_page()
        page.set_default_timeout(20_000)
        page.goto(console.url + "/login")
        page.fill("input[name=username]", "aud1")
        page.fill("input[name=password]", PASSWORDS["aud1"][1])
        page.click("button[type=submit]")
        page.wait_for_load_state()
        page.goto(console.url + f"/hosts/{seed.agent_id('财务部-PC01')}")
        assert page.locator("#report tr[data-status=problem]").count() == 1
        page.screenshot(path=str(shots / "host.png"), full_page=True)
        page.goto(console.url + "/dashboard")
        assert page.locator("#at-rest-tile .n").inner_text() == "11"
        page.screenshot(path=str(shots / "dashboard-at-rest.png"), full_page=True)
    finally:
        ctx.close()
