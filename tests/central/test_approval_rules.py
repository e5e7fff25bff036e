"""审批 in-process: the pure rule of what an approval covers, signed documents judged by
the agent, and the request socket against hostile local users (real UNIX socket, real
descriptors passed with SCM_RIGHTS, the agent's real spool). The whole flow with a real
collector and agent is test_approvals.py."""
from __future__ import annotations

import datetime as dt
import hashlib
import os
import socket
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from baomi.agent.approvals import ApprovalsComponent, approvals_of, ask
from baomi.common import approvals as rules
from baomi.common import central
from baomi.common.events import medium_obj
from tests.central.test_agent_store import KEY, context

NOW = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.timezone.utc)
SHA = "ab" * 32
STICK = {"vendor_id": "0781", "product_id": "5567", "serial": "S1", "fs_uuid": "1234-ABCD", "registry_id": None}


def grant(agent_id: str = "agent-1", seq: int = 1, hours: float = 24, copies: int | None = 1,
          medium: dict | None = None, uid: int = 1000, key: Ed25519PrivateKey = KEY, rid: str = "ap-1") -> dict:
    doc = rules.document(request_id=rid, seq=seq, decision="granted", agent_id=agent_id,
                         user={"uid": uid, "name": "zw"}, sha256=SHA, medium=medium or rules.medium_spec(STICK),
                         issued_at=NOW, hours=hours, copies=copies, decided_by="sec1")
    return central.sign(doc, key)


def void(doc: dict, **kw) -> str | None:
    args = dict(sha256=SHA, uid=1000, medium=STICK, now=NOW + dt.timedelta(hours=1), skew_s=0, used=0)
    args.update(kw)
    return rules.void_reason(doc, **args)


def test_a_grant_covers_only_its_content_medium_user_time_and_copies() -> None:
    doc = grant()["document"]
    assert void(doc) is None
    assert void(doc, sha256="cd" * 32) == "approved for other content"
    assert void(doc, uid=1001) == "approved for another user"
    assert void(doc, uid=None) == "approved for another user"
    assert void(doc, medium={**STICK, "fs_uuid": "9999-0000"}) == "approved for another medium"
    assert void(doc, medium={**STICK, "serial": "S2"}) == "approved for another medium"
    assert void(doc, medium={**STICK, "registry_id": "M-0001"}) == "approved for another medium"
    assert void(doc, used=1) == "the approval's 1 copies are used"
    assert void(doc, now=NOW + dt.timedelta(hours=24)) == "the approval has expired"
    # the host's clock may be behind: an hour of skew makes it void an hour early
    assert void(doc, now=NOW + dt.timedelta(hours=23, minutes=1), skew_s=3600) == "the approval has expired"
    assert void(grant(copies=None)["document"], used=500) is None


def test_a_registered_medium_is_named_by_its_id() -> None:
    registered = {**STICK, "registry_id": "M-0042"}
    doc = grant(medium=rules.medium_spec(registered))["document"]
    assert doc["medium"] == {"registry_id": "M-0042"}
    assert void(doc, medium=registered) is None
    assert void(doc, medium={**STICK, "registry_id": "M-0043"}) == "approved for another medium"
    assert void(doc, medium=STICK) == "approved for another medium"


def test_bad_decisions_are_refused_before_signing() -> None:
    for bad, why in ((dict(decision="maybe"), "decision"), (dict(sha256="xyz"), "sha256"),
                     (dict(hours=0), "validity"), (dict(hours=24 * 31), "validity"), (dict(copies=0), "copies")):
        args = dict(request_id="ap-1", seq=1, decision="granted", agent_id="a", user={"uid": 1}, sha256=SHA,
                    medium={}, issued_at=NOW, hours=24, copies=None, decided_by="sec1")
        args.update(bad)
        with pytest.raises(ValueError, match=why):
            rules.document(**args)


def test_the_agent_keeps_only_verified_decisions_for_itself(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    me = ctx.identity.agent_id
    a = approvals_of(ctx)
    other_key = Ed25519PrivateKey.generate()
    offered = [grant(me, 1, rid="ap-good"), grant(me, 2, key=other_key, rid="ap-forged"),
               grant("another-agent", 3, rid="ap-elsewhere"), {"document": "junk"}, "junk"]
    tampered = grant(me, 4, rid="ap-tampered")
    tampered["document"]["copies"] = None
    assert a.receive(offered + [tampered]) == 1
    assert set(a.docs) == {"ap-good"}
    forged = [e for e in ctx.spool.iter_events(0, "policy.forged")]
    assert len(forged) == 5 and all(e["details"]["document"] == "approval" for e in forged)
    assert ctx.status["approvals_seq"] == 1
    assert a.receive([grant(me, 1, rid="ap-good")]) == 0   # resent: nothing new
    # kept across a restart, verified again; an altered copy on disk is dropped
    path = a.path
    ctx2 = context(tmp_path)
    assert set(approvals_of(ctx2).docs) == {"ap-good"}
    text = path.read_text().replace('"copies": 1', '"copies": 99')
    path.write_text(text)
    assert approvals_of(context(tmp_path)).docs == {}


def test_a_claim_counts_copies_and_records_the_use(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    a = approvals_of(ctx)
    a.receive([grant(ctx.identity.agent_id, 1, hours=24 * 30, copies=2, rid="ap-two")])
    assert a.claim(SHA, 1000, STICK) == "ap-two"
    assert a.claim(SHA, 1001, STICK) is None
    assert a.claim(SHA, 1000, STICK) == "ap-two"
    assert a.claim(SHA, 1000, STICK) is None          # both copies used
    used = list(ctx.spool.iter_events(0, "approval.used"))
    assert [e["details"]["remaining"] for e in used] == [1, 0]
    assert approvals_of(context(tmp_path)).used == {"ap-two": 2}   # the count survives a restart


@pytest.fixture
def served(tmp_path: Path):
    ctx = context(tmp_path, f'[approvals]\nsocket = "{tmp_path / "request.sock"}"\nper_user_per_hour = 3\n')
    comp = ApprovalsComponent(ctx)
    comp.start()
    yield ctx, tmp_path / "request.sock"
    ctx.stopping.set()
    comp.stop()


def _blocked(ctx, sha: str, uid: int) -> None:
    ctx.record("file.blocked", severity="high", action="block", user={"uid": uid, "name": "zw", "session": None},
               medium=medium_obj(STICK, "/media/zw/U"), file={"path": "a.txt", "name": "a.txt", "sha256": sha,
                                                             "level": "secret"}, details={})


def test_requests_need_the_users_own_blocked_copy_and_a_reason(served, tmp_path: Path) -> None:
    ctx, sock = served
    f = tmp_path / "a.txt"
    f.write_bytes(b"secret stuff")
    sha = hashlib.sha256(f.read_bytes()).hexdigest()
    fd = os.open(f, os.O_RDONLY)
    try:
        assert "no blocked copy" in ask(sock, {"type": "request", "reason": "x"}, fd)["error"]
        _blocked(ctx, sha, 4242)                          # someone else's blocked copy does not count
        assert "no blocked copy" in ask(sock, {"type": "request", "reason": "x"}, fd)["error"]
        _blocked(ctx, sha, os.getuid())
        assert "reason is required" in ask(sock, {"type": "request", "reason": "  "}, fd)["error"]
        answer = ask(sock, {"type": "request", "reason": "报送"}, fd)
        assert answer["ok"] and answer["level"] == "secret"
        req = list(ctx.spool.iter_events(0, "approval.requested"))[-1]
        assert req["details"]["request_id"] == answer["request_id"] and req["user"]["uid"] == os.getuid()
        assert req["details"]["target"] == rules.medium_spec(STICK)
        assert "too many requests" in ask(sock, {"type": "request", "reason": "again"}, fd)["error"]
    finally:
        os.close(fd)
    listed = ask(sock, {"type": "list"})
    assert [r["status"] for r in listed["requests"]] == ["pending"]


def test_hostile_requests_get_a_clear_refusal(served, tmp_path: Path) -> None:
    ctx, sock = served
    assert "descriptor did not come" in ask(sock, {"type": "request", "reason": "x"})["error"]
    assert "unknown request type" in ask(sock, {"type": "grant"})["error"]
    fd = os.open(tmp_path, os.O_RDONLY)   # a directory
    try:
        assert "not a regular file" in ask(sock, {"type": "request", "reason": "x"}, fd)["error"]
    finally:
        os.close(fd)
    r, w = os.pipe()
    try:
        assert "not a regular file" in ask(sock, {"type": "request", "reason": "x"}, r)["error"]
    finally:
        os.close(r)
        os.close(w)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:   # not JSON
        s.connect(str(sock))
        s.sendall(b"\xff\xfe not json\n")
        assert b"not a request" in s.recv(4096)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:   # a huge line: cut, refused, no hang
        s.connect(str(sock))
        try:
            s.sendall(b"{" + b"x" * (1 << 20))
        except OSError:
            pass
        s.settimeout(20)
        assert b"not a request" in s.recv(4096)
    # the socket is open to every local user, and nothing else the agent holds is
    assert oct(os.stat(sock).st_mode & 0o777) == "0o666"
    assert threading.active_count() < 50
