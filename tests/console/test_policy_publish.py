"""The security administrator publishes policy in headless Chromium: makes the signing
key, changes a cell, signs with the passphrase; the auditor sees the change with before
and after. Screenshots: test-artifacts/console/policy-*.png."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.central.conftest import PASSPHRASE, PASSWORDS, add_users
from tests.support.collector import Collector

pytestmark = pytest.mark.timeout(240)


def _login(browser, url: str, name: str):
    ctx = browser.new_context(locale="zh-CN", viewport={"width": 1366, "height": 900})
    page = ctx.new_page()
    page.set_default_timeout(30_000)
    page.goto(url + "/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORDS[name][1])
    page.click("button[type=submit]")
    page.wait_for_load_state()
    return ctx, page


def test_secadmin_publishes_in_the_browser(browser, shots, tmp_path: Path) -> None:
    with Collector(tmp_path / "c") as collector:
        add_users(collector)
        ctx, page = _login(browser, collector.url, "sec1")
        page.goto(collector.url + "/policy")
        assert "尚未发布集中策略" in page.locator("#policy-version").inner_text()
        page.fill("#key-form input[name=passphrase]", PASSPHRASE)
        page.fill("#key-form input[name=passphrase2]", PASSPHRASE)
        page.click("#key-form button[type=submit]")
        page.wait_for_load_state()
        assert page.locator("#key-fingerprint").inner_text().count(":") == 7
        page.select_option('select[name="cell.unclassified.personal.internal"]', "block")
        page.fill("#policy-form input[name=passphrase]", PASSPHRASE)
        page.click("#publish")
        page.wait_for_load_state()
        notice = page.locator("#policy-notice").inner_text()
        assert "第 1 版" in notice and "unclassified.personal.internal" in notice
        assert "第 1 版" in page.locator("#policy-version").inner_text()
        page.screenshot(path=str(shots / "policy-publish.png"), full_page=True)
        # a wrong passphrase: nothing published, said so
        page.fill("#policy-form input[name=passphrase]", "Not-The-Passphrase-1")
        page.click("#publish")
        page.wait_for_load_state()
        assert "签名口令错误" in page.locator("#policy-error").inner_text()
        ctx.close()

        ctx, page = _login(browser, collector.url, "aud1")
        page.goto(collector.url + "/policy")
        assert page.locator("#policy-form select").count() == 0   # the auditor reads, never edits
        page.goto(collector.url + "/audit")
        row = page.locator("tr", has_text="console.policy_published")
        text = row.inner_text()
        assert "发布集中策略" in text and '"before": "notify"' in text and '"after": "block"' in text
        page.screenshot(path=str(shots / "policy-audit.png"), full_page=True)
        ctx.close()

        ctx, page = _login(browser, collector.url, "sys1")
        assert "/policy" not in [a.get_attribute("href") for a in page.query_selector_all("header nav a")]
        ctx.close()
