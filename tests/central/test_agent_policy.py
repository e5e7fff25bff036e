"""End to end: a real collector, a real `baomi-agent run` enforcing a loop exFAT medium.
The security administrator changes a cell through the console's HTTP interface and the
agent enforces it within one heartbeat; a document written straight into the database
and a replayed older version are refused with their events; an agent that was off
during a change applies it when it is back; a restart with the collector down applies
the stored document."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.central.conftest import add_users, central_toml, create_key, login, publish, save_public_key
from tests.support.agent_run import AgentRun, gateway_unavailable, is_mount, media_component_available
from tests.support.collector import Collector
from tests.support.enforce_harness import wait_for, write
from tests.support.media import LoopMedium

pytestmark = [pytest.mark.root, pytest.mark.timeout(480)]

CELL = "unclassified.personal.public"   # default audit: a plain file copies to a personal stick


def _copy(agent: AgentRun, mp: Path, name: str, held: bool) -> dict:
    """Write a plain file to the stick and return the agent's copy event for it."""
    since = agent.last_seq()
    try:
        write(mp / name, b"plain words, no marking\n" * 20)
        refused = False
    except PermissionError:
        refused = True
    e = agent.wait_event(lambda e: e["kind"] in ("file.copied", "file.blocked") and e["file"]["name"] == name,
                         60, f"the copy event of {name}", since_seq=since)
    if held:
        assert refused == (e["kind"] == "file.blocked"), (refused, e["kind"])
    return e


def _stop(agent: AgentRun, loop: LoopMedium, mp: Path) -> None:
    """Stops the agent; a medium its gateway held is mounted again, as the user would find it."""
    assert agent.stop() == 0, agent.log_tail()
    if not is_mount(mp):
        loop.mount(mp)


def _policy(agent: AgentRun, kind: str, since: int, timeout: float = 60, **match) -> dict:
    return agent.wait_event(lambda e: e["kind"] == kind and all(e["details"].get(k) == v for k, v in match.items()),
                            timeout, f"{kind} {match}", since_seq=since)


def test_console_change_reaches_the_agent_and_forgeries_are_refused(tmp_path: Path, artifacts: Path,
                                                                   database: str | None) -> None:
    if media_component_available():
        pytest.skip(media_component_available())
    mode = "after_write" if gateway_unavailable() else "held"
    held = mode == "held"
    tmp = Path(tempfile.mkdtemp(prefix="baomi-central-"))
    agent = None
    with Collector(tmp_path / "c", database) as collector:
        add_users(collector)
        sec = login(collector, "sec1")
        assert create_key(sec).status_code == 201
        pem = save_public_key(sec, tmp / "secadmin-policy.pub.pem")
        engine = sa.create_engine(database or f"sqlite:///{tmp_path / 'c' / 'state' / 'collector.db'}")
        try:
            with LoopMedium("exfat", size_mb=64, workdir=tmp, loop_range=range(700, 800)) as loop:
                mp = loop.mount()
                agent = AgentRun(tmp, [loop], mode=mode, log_path=artifacts / "central-agent.log",
                                 extra_toml=central_toml(collector, pem))
                agent.start()
                assert _copy(agent, mp, "before.txt", held)["kind"] == "file.copied"

                # 1. the secadmin changes one cell in the console; the agent enforces it
                since = agent.last_seq()
                assert publish(sec, {CELL: "block"}).status_code == 201
                applied = _policy(agent, "policy.applied", since, version=1)
                assert applied["details"]["source"] == "collector"
                assert applied["details"]["changed"][CELL] == {"before": None, "after": "block"}
                e = _copy(agent, mp, "after.txt", held)
                assert e["kind"] == "file.blocked" and e["rule"] == CELL
                wait_for(lambda: "central:1" in login(collector, "aud1").get("/hosts").text, 30,
                         "the hosts page to show the version the host runs")

                # 2. the sysadmin (or anyone with the database) writes a document of its own
                since = agent.last_seq()
                with engine.begin() as conn:
                    row = conn.execute(sa.text("SELECT document, signature FROM policy_documents "
                                               "WHERE version = 1")).one()
                    doc = json.loads(row.document)
                    doc["version"], doc["cells"][CELL] = 2, "allow"
                    conn.execute(sa.text("INSERT INTO policy_documents (version, scope, issued_at, published_by, "
                                         "document, signature) VALUES (2, 'all', :t, 'sysadmin', :d, :s)"),
                                 {"t": "2026-12-01 10:00:00", "d": json.dumps(doc), "s": row.signature})
                forged = _policy(agent, "policy.forged", since, offered_version=2)
                assert forged["details"]["running_version"] == 1 and forged["severity"] == "high"
                assert _copy(agent, mp, "forged.txt", held)["kind"] == "file.blocked"
                with engine.begin() as conn:
                    conn.execute(sa.text("DELETE FROM policy_documents WHERE version = 2"))

                # 3. a real version 2, then its row deleted: the collector offers version 1 again
                since = agent.last_seq()
                assert publish(sec, {"unclassified.personal.internal": "block"}).status_code == 201
                _policy(agent, "policy.applied", since, version=2)
                since = agent.last_seq()
                with engine.begin() as conn:
                    v2 = conn.execute(sa.text("SELECT * FROM policy_documents WHERE version = 2")).one()._asdict()
                    conn.execute(sa.text("DELETE FROM policy_documents WHERE version = 2"))
                refused = _policy(agent, "policy.rollback_refused", since, offered_version=1)
                assert refused["details"]["running_version"] == 2
                assert _copy(agent, mp, "rollback.txt", held)["kind"] == "file.blocked"
                with engine.begin() as conn:
                    conn.execute(sa.text("INSERT INTO policy_documents (version, scope, issued_at, published_by, "
                                         "document, signature) VALUES (:version, :scope, :issued_at, "
                                         ":published_by, :document, :signature)"), v2)

                # 4. the agent is off while the secadmin allows the cell again; back, it applies it
                _stop(agent, loop, mp)
                assert publish(sec, {CELL: "audit"}).status_code == 201
                since = agent.last_seq()
                agent.start()
                stored = _policy(agent, "policy.applied", since, version=2)
                assert stored["details"]["source"] == "stored"
                _policy(agent, "policy.applied", since, version=3, source="collector")
                assert _copy(agent, mp, "reconnected.txt", held)["kind"] == "file.copied"

                # 5. the collector is gone; a restart applies the stored version 3 offline
                assert publish(sec, {CELL: "block"}).status_code == 201
                since = agent.last_seq()
                _policy(agent, "policy.applied", since, version=4)
                collector.stop()
                _stop(agent, loop, mp)
                since = agent.last_seq()
                agent.start()
                assert _policy(agent, "policy.applied", since, version=4)["details"]["source"] == "stored"
                assert _copy(agent, mp, "offline.txt", held)["kind"] == "file.blocked"
                loop.unmount()
        finally:
            if agent is not None:
                agent.stop()
                agent.cleanup_mounts()
            engine.dispose()
