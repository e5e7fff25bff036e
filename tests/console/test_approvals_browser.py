"""审批 in headless Chromium against a real collector: an enrolled agent (speaking the real
signed protocol) reports a user's request; the security administrator sees it with level,
markings, hash, user, host and target medium, grants it for one copy with the passphrase;
the agent's next batch answer carries the signed decision (and another agent's does not);
the auditor sees the decision with before and after. Screenshots for docs/media.md:
test-artifacts/console/approvals-pending.png, approvals-granted.png, approvals-audit.png."""
from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from baomi.common import approvals as rules
from tests.central.conftest import PASSPHRASE, add_users, create_key, login
from tests.console.test_policy_publish import _login
from tests.support.collector import Collector, SigningAgent
from tests.support.enforce_harness import wait_for

pytestmark = pytest.mark.timeout(240)

SHA = "3f" * 32


def _requested(agent: SigningAgent) -> dict:
    return agent.event(
        "approval.requested", severity="medium",
        file={"path": "报送材料/2027年度预算.docx", "name": "2027年度预算.docx", "size": 48213, "sha256": SHA,
              "type": "docx", "level": "secret", "inspectable": True,
              "evidence": [{"rule": "national.marking", "zone": "header", "level": "secret",
                            "location": "第1页 页眉", "hash": "ab" * 8}]},
        medium={"vendor_id": "0781", "product_id": "5567", "serial": "4C530001", "fs_uuid": "1234-ABCD",
                "fs_label": "ZHANGWEI-U", "registry_id": None, "class": "personal", "mountpoint": "/media/zw/U"},
        details={"request_id": "ap-0123456789abcdef0123", "reason": "报送上级机关,已经分管副总经理同意",
                 "blocked_event_id": "e-1", "target": rules.medium_spec(
                     {"vendor_id": "0781", "product_id": "5567", "serial": "4C530001", "fs_uuid": "1234-ABCD"})})


def test_secadmin_grants_a_request_in_the_browser(browser, shots, tmp_path: Path) -> None:
    with Collector(tmp_path / "c") as collector:
        add_users(collector)
        assert create_key(login(collector, "sec1")).status_code == 201
        pem = login(collector, "sec1").get("/policy/secadmin-policy.pub.pem").content
        agent, other = SigningAgent(collector.url), SigningAgent(collector.url)
        assert agent.enroll(collector.token(), "财务部-PC01").status_code == 200
        assert other.enroll(collector.token(), "财务部-PC02").status_code == 200
        assert agent.send([_requested(agent)]).status_code == 200

        ctx, page = _login(browser, collector.url, "sec1")
        page.goto(collector.url + "/approvals")
        card = page.locator("#request-ap-0123456789abcdef0123")
        text = card.inner_text()
        for shown in ("2027年度预算.docx", "机密", "待审批", "zhangwei", "财务部-PC01", "ZHANGWEI-U", "个人介质",
                      "1234-ABCD", SHA, "报送上级机关", "national.marking"):
            assert shown in text, shown
        page.screenshot(path=str(shots / "approvals-pending.png"), full_page=True)
        card.locator("input[name=copies]").fill("1")
        card.locator("input[name=comment]").fill("同意报送,限一次")
        card.locator("input[name=passphrase]").fill(PASSPHRASE)
        card.locator("button.grant").click()
        page.wait_for_load_state()
        assert "已签名批准" in page.locator("#approvals-notice").inner_text()
        text = page.locator("#request-ap-0123456789abcdef0123").inner_text()
        assert "已批准" in text and "已拷贝 0/1 次" in text and "同意报送,限一次" in text
        assert page.locator("#request-ap-0123456789abcdef0123 form").count() == 0   # decided once
        page.screenshot(path=str(shots / "approvals-granted.png"), full_page=True)
        ctx.close()

        # the requesting agent's next answer carries the signed decision; the other agent's does not
        answer = agent.send([agent.event("agent.heartbeat", details={"approvals_seq": 0})]).json()
        assert len(answer["approvals"]) == 1
        doc = rules.verify(answer["approvals"][0], load_pem_public_key(pem), agent.agent_id)
        assert doc["decision"] == "granted" and doc["copies"] == 1 and doc["sha256"] == SHA
        assert doc["medium"] == {"binding": {"vendor_id": "0781", "product_id": "5567", "serial": "4C530001",
                                             "fs_uuid": "1234-ABCD"}}
        assert "approvals" not in other.send([other.event("agent.heartbeat", details={})]).json()
        # once the agent says it holds it, the collector stops resending it
        agent.send([agent.event("agent.heartbeat", details={"approvals_seq": doc["seq"]})])
        assert "approvals" not in agent.send([agent.event("agent.heartbeat", details={"approvals_seq": 1})]).json()
        # its use, reported by the agent, shows on the console
        agent.send([agent.event("approval.used", severity="medium", details={
            "approval_id": doc["id"], "used": 1, "copies": 1, "remaining": 0})])
        wait_for(lambda: "已拷贝 1/1 次" in login(collector, "sec1").get("/approvals").text, 10,
                 "the use on the console")

        ctx, page = _login(browser, collector.url, "aud1")
        page.goto(collector.url + "/approvals")
        assert page.locator("input[name=passphrase]").count() == 0   # the auditor reads, never decides
        page.goto(collector.url + "/audit")
        row = page.locator("tr", has_text="approval.granted")
        text = row.inner_text()
        assert "sec1" in text and '"before": {"status": "pending"}' in text and '"copies": 1' in text
        page.screenshot(path=str(shots / "approvals-audit.png"), full_page=True)
        ctx.close()

        ctx, page = _login(browser, collector.url, "sys1")
        assert "/approvals" not in [a.get_attribute("href") for a in page.query_selector_all("header nav a")]
        assert page.goto(collector.url + "/approvals").status == 403
        ctx.close()
