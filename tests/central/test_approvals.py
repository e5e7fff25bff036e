"""End to end, 审批: a real collector (SQLite and PostgreSQL), a real `baomi-agent run` on a
loop exFAT stick. A user's marked copy is blocked; the user asks for approval with
`baomi-agent approvals request`; the security administrator grants it in the console
(signed with the passphrase); the copy then succeeds once and is recorded with
`details.approval_id`, a second copy is blocked, a grant that has expired is void,
a refusal is delivered, and a decision the sysadmin writes into the database is refused."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.central.conftest import PASSPHRASE, add_users, central_toml, create_key, csrf_of, login, save_public_key
from tests.support.agent_run import REPO, AgentRun, gateway_unavailable, media_component_available
from tests.support.collector import Collector
from tests.support.enforce_harness import wait_for, write
from tests.support.media import LoopMedium

pytestmark = [pytest.mark.root, pytest.mark.timeout(480)]

MARKED = "关于2027年度预算的请示\n机密★1年\n正文内容……\n".encode("utf-8") * 4


def _copy(agent: AgentRun, mp: Path, name: str, data: bytes) -> dict:
    since = agent.last_seq()
    try:
        write(mp / name, data)
        refused = False
    except PermissionError:
        refused = True
    e = agent.wait_event(lambda e: e["kind"] in ("file.copied", "file.blocked") and e["file"]["name"] == name,
                         60, f"the copy event of {name}", since_seq=since)
    if agent.mode == "held":
        assert refused == (e["kind"] == "file.blocked"), (refused, e["kind"])
    return e


def _request(agent: AgentRun, original: Path, reason: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "baomi.agent.cli", "approvals", "request", str(original),
                           "--reason", reason, "--socket", str(agent.request_socket)],
                          cwd=REPO, capture_output=True, text=True, timeout=60)


def _serves(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(str(path))
        except OSError:
            return False
    return True


def _decide(sec, request_id: str, decision: str, **fields: str):
    csrf = csrf_of(sec.get("/approvals").text)
    return sec.post(f"/approvals/{request_id}", data={"csrf_token": csrf, "decision": decision,
                                                     "passphrase": PASSPHRASE, **fields})


def _requested(agent: AgentRun, since: int) -> str:
    e = agent.wait_event(lambda e: e["kind"] == "approval.requested", 30, "approval.requested", since_seq=since)
    return e["details"]["request_id"]


def test_requested_granted_used_once_then_blocked_and_forgeries_refused(tmp_path: Path, artifacts: Path,
                                                                        database: str | None) -> None:
    if media_component_available():
        pytest.skip(media_component_available())
    mode = "after_write" if gateway_unavailable() else "held"
    tmp = Path(tempfile.mkdtemp(prefix="baomi-approvals-"))
    original = tmp / "budget.txt"
    original.write_bytes(MARKED)
    agent = None
    with Collector(tmp_path / "c", database) as collector:
        add_users(collector)
        sec, aud = login(collector, "sec1"), login(collector, "aud1")
        assert create_key(sec).status_code == 201
        pem = save_public_key(sec, tmp / "secadmin-policy.pub.pem")
        engine = sa.create_engine(database or f"sqlite:///{tmp_path / 'c' / 'state' / 'collector.db'}")
        try:
            with LoopMedium("exfat", size_mb=64, workdir=tmp, loop_range=range(720, 800)) as loop:
                mp = loop.mount()
                agent = AgentRun(tmp, [loop], mode=mode, log_path=artifacts / "approvals-agent.log", extra_toml=central_toml(collector, pem, f"""
[approvals]
socket = "{tmp / 'request.sock'}"
clock_skew_s = 0
"""))
                agent.request_socket = tmp / "request.sock"
                agent.start()
                # the media are enforced before the later components (approvals among them) start
                wait_for(lambda: _serves(agent.request_socket), 60, "the agent's request socket")

                # a request without a blocked copy is refused with the reason
                r = _request(agent, original, "需要报送上级")
                assert r.returncode == 1 and "no blocked copy" in r.stderr, r.stderr

                # 1. blocked; the user asks; the secadmin sees level, hash, user, medium, reason
                blocked = _copy(agent, mp, "budget.txt", MARKED)
                assert blocked["kind"] == "file.blocked" and blocked["file"]["level"] == "secret"
                since = agent.last_seq()
                r = _request(agent, original, "报送上级机关,已经分管领导同意")
                assert r.returncode == 0, r.stderr
                rid = _requested(agent, since)
                assert rid in r.stdout
                page = wait_for(lambda: (lambda t: t if rid in t else None)(sec.get("/approvals?status=pending").text),
                                30, "the request on the console")
                for shown in ("报送上级机关", blocked["file"]["sha256"], "budget.txt", "e2e-pc",
                              blocked["medium"]["fs_uuid"]):
                    assert shown in page, shown
                assert rid in aud.get("/approvals").text                   # the auditor sees it,
                assert 'name="passphrase"' not in aud.get("/approvals").text   # and cannot decide
                assert aud.post(f"/approvals/{rid}", data={"decision": "granted"}).status_code in (403, 400)

                # a wrong passphrase signs nothing
                assert _decide(sec, rid, "granted", passphrase="wrong-passphrase-2026").status_code == 403
                # 2. granted for one copy: the copy lands once, recorded with the approval's id
                assert _decide(sec, rid, "granted", copies="1", hours="24", comment="同意,限一次").status_code == 201
                agent.wait_event(lambda e: e["kind"] == "agent.heartbeat" and e["details"].get("approvals_seq") == 1,
                                 30, "the agent to hold the decision")
                e = _copy(agent, mp, "budget-approved.txt", MARKED)
                assert e["kind"] == "file.copied", e
                assert e["details"]["approval_id"] == rid and e["action"] == "allow"
                used = agent.wait_event(lambda e: e["kind"] == "approval.used", 10, "approval.used")
                assert used["details"]["remaining"] == 0
                assert (mp / "budget-approved.txt").read_bytes() == MARKED
                # 3. a second copy of the same content: the one copy is used up
                assert _copy(agent, mp, "budget-again.txt", MARKED)["kind"] == "file.blocked"
                # other content under the approved name is not covered
                assert _copy(agent, mp, "budget-approved2.txt", MARKED + b"x")["kind"] == "file.blocked"

                # 4. a grant that expires: valid for 12 s, copies land, then it is void
                since = agent.last_seq()
                assert _request(agent, original, "再报一份").returncode == 0
                rid2 = _requested(agent, since)
                assert _decide(sec, rid2, "granted", hours=str(12 / 3600)).status_code == 201
                agent.wait_event(lambda e: e["kind"] == "agent.heartbeat" and e["details"].get("approvals_seq") == 2,
                                 30, "the agent to hold the second decision")
                granted_at = time.monotonic()
                e = _copy(agent, mp, "budget-2.txt", MARKED)
                assert e["kind"] == "file.copied" and e["details"]["approval_id"] == rid2
                time.sleep(max(0.0, 13 - (time.monotonic() - granted_at)))
                assert _copy(agent, mp, "budget-3.txt", MARKED)["kind"] == "file.blocked"

                # 5. refused: delivered, nothing allowed
                since = agent.last_seq()
                assert _request(agent, original, "第三份").returncode == 0
                rid3 = _requested(agent, since)
                assert _decide(sec, rid3, "refused", comment="不予批准").status_code == 201
                agent.wait_event(lambda e: e["kind"] == "agent.heartbeat" and e["details"].get("approvals_seq") == 3,
                                 30, "the agent to hold the refusal")
                listed = subprocess.run([sys.executable, "-m", "baomi.agent.cli", "approvals", "list", "--json",
                                         "--socket", str(agent.request_socket)], cwd=REPO, capture_output=True,
                                        text=True, timeout=60)
                statuses = {json.loads(x)["request_id"]: json.loads(x)["status"] for x in listed.stdout.splitlines()}
                assert statuses == {rid: "granted", rid2: "granted", rid3: "refused"}, listed
                assert _copy(agent, mp, "budget-4.txt", MARKED)["kind"] == "file.blocked"
                assert _decide(sec, rid3, "granted").status_code == 409   # decided once

                # 6. the sysadmin writes a grant of its own into the database: refused by the agent
                since = agent.last_seq()
                assert _request(agent, original, "第四份").returncode == 0
                rid4 = _requested(agent, since)
                wait_for(lambda: rid4 in sec.get("/approvals").text, 30, "the fourth request on the console")
                with engine.begin() as conn:
                    doc = json.loads(conn.execute(sa.text("SELECT document FROM approvals WHERE request_id = :r"),
                                                  {"r": rid}).scalar_one())
                    sig = conn.execute(sa.text("SELECT signature FROM approvals WHERE request_id = :r"),
                                       {"r": rid}).scalar_one()
                    doc.update(id=rid4, seq=4, copies=None)
                    conn.execute(sa.text("UPDATE approvals SET status='granted', seq=4, document=:d, signature=:s "
                                         "WHERE request_id = :r"), {"d": json.dumps(doc), "s": sig, "r": rid4})
                forged = agent.wait_event(lambda e: e["kind"] == "policy.forged"
                                          and e["details"].get("document") == "approval", 30, "the forged grant refused")
                assert forged["details"]["approval_id"] == rid4 and forged["severity"] == "high"
                assert _copy(agent, mp, "budget-5.txt", MARKED)["kind"] == "file.blocked"

                # the auditor's trail has every decision with before and after
                audit = aud.get("/audit").text
                assert audit.count("approval.granted") >= 2 and audit.count("approval.refused") >= 1
                assert rid in audit and rid3 in audit
                with engine.connect() as conn:
                    kinds = [json.loads(b)["details"]["after"]["status"] for (b,) in conn.execute(sa.text(
                        "SELECT body FROM events WHERE kind IN ('approval.granted', 'approval.refused')"))]
                assert sorted(kinds) == ["granted", "granted", "refused"]
                loop.unmount()
        finally:
            if agent is not None:
                agent.stop()
                agent.cleanup_mounts()
            engine.dispose()
