"""The self-inspection request (立即自查) at the ingest API, on SQLite and PostgreSQL: every batch
answer carries the agent's pending request and no other agent's; a check.report naming another
id leaves it; the report (or the check's failure) naming it clears it."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

from baomi.service import config as config_mod
from baomi.service import db
from tests.support.collector import Collector, SigningAgent

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def collector(tmp_path: Path, database: str | None):
    with Collector(tmp_path / "c", database) as c:
        yield c


def _ask(engine: sa.Engine, agent_id: str, request_id: str) -> None:
    with engine.begin() as conn:
        conn.execute(db.agents.update().where(db.agents.c.agent_id == agent_id).values(
            check_request=request_id, check_requested_at=dt.datetime.now(dt.timezone.utc), check_requested_by="sec1"))


def _pending(engine: sa.Engine, agent_id: str):
    with engine.connect() as conn:
        return conn.execute(sa.select(db.agents.c.check_request).where(db.agents.c.agent_id == agent_id)).scalar()


def _report(agent: SigningAgent, request_id: str | None, kind: str = "check.report") -> dict:
    details = {"result": "pass", "checks": []}
    if request_id:
        details["requested_by_collector"] = request_id
    return agent.event(kind, details=details)


def test_the_answer_carries_the_request_until_the_report_names_it(collector: Collector, agent: SigningAgent) -> None:
    engine = db.make_engine(config_mod.load(collector.config).url)
    try:
        other = SigningAgent(collector.url)
        assert other.enroll(collector.token(), name="测试-PC02").status_code == 200
        r = agent.send([agent.event("agent.heartbeat", details={"version": "t"})])
        assert r.status_code == 200 and "check_requested" not in r.json()

        _ask(engine, agent.agent_id, "a1b2c3d4")
        r = agent.send([agent.event("agent.heartbeat", details={"version": "t"})])
        assert r.json()["check_requested"] == "a1b2c3d4"
        assert "check_requested" not in other.send([other.event("agent.heartbeat", details={})]).json()
        # an older report, or the scheduled one, does not answer the request
        r = agent.send([_report(agent, None), _report(agent, "0000")])
        assert r.json()["check_requested"] == "a1b2c3d4" and _pending(engine, agent.agent_id) == "a1b2c3d4"
        # the report that names it clears it, in the same batch's answer already
        r = agent.send([_report(agent, "a1b2c3d4")])
        assert r.status_code == 200 and "check_requested" not in r.json()
        assert _pending(engine, agent.agent_id) is None
        # a check that failed answers the request too
        _ask(engine, agent.agent_id, "ffee")
        r = agent.send([agent.event("agent.component_failed", severity="high",
                                    details={"component": "check", "error": "x", "requested_by_collector": "ffee"})])
        assert "check_requested" not in r.json() and _pending(engine, agent.agent_id) is None
    finally:
        engine.dispose()
