"""Host identity is the collector's, not the agent's: the stored host name is
the enrolled one whatever an event claims; a host name is enrolled once; an
enrolled key enrolls again only after the sysadmin approved it."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.collector import Collector, SigningAgent

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def collector(tmp_path: Path, database: str | None):
    with Collector(tmp_path / "c", database) as c:
        yield c


def test_event_host_claim_does_not_change_the_stored_host(collector: Collector) -> None:
    a = SigningAgent(collector.url)
    assert a.enroll(collector.token(), name="财务部-PC07").status_code == 200
    e = a.event()
    e["host"] = {"id": a.agent_id, "name": "总经理-PC01", "class": "classified"}
    from baomi.common import events as ev
    e["hash"] = ev.event_hash(e)
    assert a.send([e]).status_code == 200
    (row,) = collector.stored(agent_id=a.agent_id)
    assert row["host"]["name"] == "总经理-PC01"     # the signed body is kept as sent
    out = collector.cli("events", "--agent", a.agent_id).stdout
    assert "财务部-PC07" in out and "总经理-PC01" not in out


def test_enrollment_refuses_a_duplicate_host_name(collector: Collector) -> None:
    a, b = SigningAgent(collector.url), SigningAgent(collector.url)
    assert a.enroll(collector.token(), name="PC-1").status_code == 200
    r = b.enroll(collector.token(), name="PC-1")
    assert r.status_code == 409 and "PC-1" in r.json()["error"]
    (ref,) = collector.stored(kind="agent.enroll_refused")
    assert ref["details"]["reason"] == "duplicate_host_name" and ref["details"]["agent_id"] == b.agent_id


def test_reenrolling_a_key_needs_sysadmin_approval(collector: Collector) -> None:
    a = SigningAgent(collector.url)
    assert a.enroll(collector.token(), name="PC-2").status_code == 200
    r = a.enroll(collector.token(), name="PC-2-renamed")
    assert r.status_code == 409 and "approve" in r.json()["error"]
    (ref,) = collector.stored(kind="agent.enroll_refused")
    assert ref["details"]["reason"] == "reenroll_not_approved"
    collector.cli("agents", "approve", a.agent_id, "--by", "sys1")
    assert a.enroll(collector.token(), name="PC-2-renamed").status_code == 200
    assert a.enroll(collector.token(), name="PC-2-renamed").status_code == 409   # the approval is used up
    assert [e["details"]["approved_by"] for e in collector.stored(kind="agent.enrolled")
            if e["details"]["re_enrolled"]] == ["sys1"]
    assert collector.cli("agents", "approve", "nope", check=False).returncode == 1


def test_a_token_made_for_a_host_sets_its_enrolled_name_and_class(collector: Collector) -> None:
    """The enrolled name is the sysadmin's when the token names the host, not the agent's claim."""
    token = collector.token(None, "--host", "财务部-PC01", "--class", "classified")
    a = SigningAgent(collector.url)
    assert a.enroll(token, name="whatever-i-like").status_code == 200
    assert a.send([a.event()]).status_code == 200
    out = collector.cli("events", "--agent", a.agent_id).stdout
    assert "财务部-PC01" in out and "whatever-i-like" not in out
    (enrolled,) = collector.stored(kind="agent.enrolled")
    assert enrolled["details"]["name_from"] == "token" and enrolled["details"]["class"] == "classified"
    assert enrolled["details"]["claimed_host"] == "whatever-i-like"
    bad = collector.cli("token", "create", "--host", "x" * 300, check=False)
    assert bad.returncode == 2 and "--host" in bad.stderr
