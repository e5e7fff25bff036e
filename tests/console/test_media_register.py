"""The security administrator registers a medium in headless Chromium: the 登记 link of a
medium the agents reported fills in its binding, the passphrase signs it, the medium page
shows it; revoking it from there; the auditor sees both in the trail. Screenshots:
test-artifacts/console/media-*.png."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.central.conftest import PASSPHRASE, add_users, create_key, login
from tests.console.test_policy_publish import _login
from tests.support.collector import Collector, SigningAgent

pytestmark = pytest.mark.timeout(240)


def test_secadmin_registers_and_revokes_in_the_browser(browser, shots, tmp_path: Path) -> None:
    with Collector(tmp_path / "c") as collector:
        add_users(collector)
        assert create_key(login(collector, "sec1")).status_code == 201
        agent = SigningAgent(collector.url)
        assert agent.enroll(collector.token()).status_code == 200
        stick = {"vendor_id": "0951", "product_id": "1666", "serial": "60A44C413A8F", "fs_uuid": "3A1F-22C0",
                 "fs_label": "KINGSTON", "manufacturer": "Kingston", "product": "DataTraveler 3.0",
                 "class": "personal", "level": None, "registry_id": None}
        assert agent.send([agent.event("medium.allowed", medium=stick, action="allow")]).status_code == 200

        ctx, page = _login(browser, collector.url, "sec1")
        page.goto(collector.url + "/media")
        assert "尚未在控制台登记介质" in page.locator("#registry-version").inner_text()
        page.click("#media-seen a.register")
        page.wait_for_load_state()
        assert page.input_value("#f-fs_uuid") == "3A1F-22C0" and page.input_value("#f-serial") == "60A44C413A8F"
        page.fill("#f-owner", "王五")
        page.select_option("#f-level", "confidential")
        page.uncheck("input[name=hosts][value=unclassified]")
        page.fill("#f-expires", "2099-12-31")
        page.fill("#f-pass", PASSPHRASE)
        page.screenshot(path=str(shots / "media-register.png"), full_page=True)
        page.click("#register-form button[type=submit]")
        page.wait_for_load_state()
        assert "介质 M-0001 已登记并签名" in page.locator("#media-notice").inner_text()
        reg = page.locator("#registration").inner_text()
        assert "王五" in reg and "秘密" in reg and "2099-12-31" in reg
        assert "测试-PC01" in page.locator("#medium-hosts").inner_text()
        page.screenshot(path=str(shots / "media-medium.png"), full_page=True)
        page.goto(collector.url + "/media")
        assert "第 1 版" in page.locator("#registry-version").inner_text()
        assert "M-0001" in page.locator("#media-seen").inner_text()
        page.screenshot(path=str(shots / "media-list.png"), full_page=True)
        page.goto(collector.url + "/media/M-0001")
        page.fill("#revoke-form input[name=reason]", "遗失")
        page.fill("#revoke-form input[name=passphrase]", PASSPHRASE)
        page.click("#revoke-form button[type=submit]")
        page.wait_for_load_state()
        assert "已注销" in page.locator("#revoked").inner_text()
        ctx.close()

        ctx, page = _login(browser, collector.url, "aud1")
        page.goto(collector.url + "/media/M-0001")
        assert page.locator("main form[method=post]").count() == 0
        page.goto(collector.url + "/audit")
        text = page.locator("main").inner_text()
        assert "console.medium_registered" in text and "console.medium_revoked" in text and "遗失" in text
        page.screenshot(path=str(shots / "media-audit.png"), full_page=True)
        ctx.close()
