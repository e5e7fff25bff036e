"""立即自查 over HTTP against a real collector process: the security administrator asks a host for
its self-inspection report on the host page; the collector's batch answer carries the request to
the agent (its real uploader and check thread, in this process); the agent runs the real check and
its check.report names the request; the collector clears the request and the host page shows the
new report. The auditor sees the request in the trail and cannot make one."""
from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import time

import pytest
import sqlalchemy as sa

from baomi.agent import config as agent_config_mod
from baomi.agent.context import open_context
from baomi.agent.daemon import start_components
from baomi.service import db
from baomi.service.enroll import create_token
from tests.console.conftest import csrf_of, make_console
from tests.delivery.conftest import agent_config

pytestmark = pytest.mark.timeout(180)


def _wait(cond, timeout: float = 90.0, what: str = ""):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_console_asks_a_host_for_its_report_and_shows_it(tmp_path, artifacts) -> None:
    (tmp_path / "collector").mkdir()
    console, proc = make_console(tmp_path / "collector", artifacts)
    ctx = comps = None
    try:
        token, _ = create_token(console.engine, 3600)
        cfg = agent_config_mod.load(agent_config(
            tmp_path / "agent", console.url, token,
            extra="[discovery]\nenabled = false\n[check]\nevery_h = 0\nprobe = false\njournalctl = false\n"
                  "kernel_logs = []\n"))
        cfg.collector.heartbeat_s = 1.0   # a batch (and its answer) every second
        ctx = open_context(cfg)
        comps = start_components(ctx, ["baomi.agent.selfcheck:SelfCheckComponent",
                                       "baomi.agent.uploader:UploaderComponent"])
        agent_id = ctx.identity.agent_id
        A, E = db.agents, db.events

        def agent_row():
            with console.engine.connect() as conn:
                return conn.execute(sa.select(A).where(A.c.agent_id == agent_id)).first()
        _wait(lambda: agent_row() is not None and agent_row().last_seq > 0, what="the agent to deliver")

        # the auditor sees the host page, but no button, and may not ask
        aud = console.login("aud1")
        page = aud.get(f"/hosts/{agent_id}").text
        assert 'id="run-check"' not in page and "尚未上报保密自查报告" in page
        r = aud.post(f"/hosts/{agent_id}/check", data={"csrf_token": csrf_of(page)})
        assert r.status_code == 403 and agent_row().check_request is None

        sec = console.login("sec1")
        page = sec.get(f"/hosts/{agent_id}").text
        assert 'id="run-check"' in page and "立即自查" in page
        r = sec.post(f"/hosts/{agent_id}/check", data={"csrf_token": "wrong"})
        assert r.status_code in (400, 403) and agent_row().check_request is None
        t0 = dt.datetime.now(dt.timezone.utc)
        r = sec.post(f"/hosts/{agent_id}/check", data={"csrf_token": csrf_of(page)})
        assert r.status_code == 201, r.text[:500]
        request_id = re.search(r'id="check-requested" data-request="([0-9a-f]+)"', r.text).group(1)
        assert "已要求该主机立即自查" in r.text and 'id="run-check"' not in r.text
        # asked twice before it is answered: one request
        again = sec.post(f"/hosts/{agent_id}/check", data={"csrf_token": csrf_of(page)})
        assert again.status_code == 409 and agent_row().check_request == request_id

        def report():
            with console.engine.connect() as conn:
                for body in conn.execute(sa.select(E.c.body).where(E.c.agent_id == agent_id,
                                                                   E.c.kind == "check.report")).scalars():
                    e = json.loads(body)
                    if e["details"].get("requested_by_collector") == request_id:
                        return e
        e = _wait(report, what="the requested check.report")
        assert e["details"]["result"] in ("pass", "fail") and e["rule"] == "保密自查"
        assert {c["id"] for c in e["details"]["checks"]} >= {"network", "usb", "at_rest", "chain"}
        _wait(lambda: agent_row().check_request is None, what="the request to be cleared")
        assert agent_row().check_requested_at is None

        # the host page shows the new report, and the button again
        page = sec.get(f"/hosts/{agent_id}").text
        section = page[page.index('id="report"'):page.index('id="counts"')]
        assert 'id="run-check"' in section and 'id="check-requested"' not in section
        assert "尚未上报保密自查报告" not in section and "data-problems=" in section
        with console.engine.connect() as conn:
            pk = conn.execute(sa.select(E.c.pk).where(E.c.event_id == e["id"])).scalar_one()
        assert f'href="/events/{pk}"' in section

        # the auditor's trail names who asked, for which host
        trail = aud.get("/audit", params={"user": "sec1"}).text
        assert "console.check_requested" in trail or "要求立即自查" in trail
        with console.engine.connect() as conn:
            (audit,) = [json.loads(b) for b in conn.execute(sa.select(E.c.body).where(
                E.c.kind == "console.check_requested")).scalars()]
        assert audit["details"]["agent_id"] == agent_id and audit["details"]["request_id"] == request_id
        assert audit["user"]["name"] == "sec1" and dt.datetime.fromisoformat(
            audit["time"].replace("Z", "+00:00")) >= t0 - dt.timedelta(seconds=5)
        # the agent ran it once, however many answers repeated the request
        assert sum(1 for x in ctx.spool.iter_events(kind="check.report")
                   if x["details"].get("requested_by_collector") == request_id) == 1
    finally:
        for comp in reversed(comps or []):
            comp.stop()
        if ctx is not None:
            ctx.spool.close()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        console.engine.dispose()
