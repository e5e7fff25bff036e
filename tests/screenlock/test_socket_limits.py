"""The helper socket under abuse by other local users: real sockets, real processes of other uids."""
from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest

from baomi.agent.config import load
from baomi.agent.context import open_context
from baomi.agent.screenlock.enforcer import Enforcer
from baomi.agent.screenlock.protocol import encode
from baomi.agent.screenlock.server import CHECK_WORKERS, HelperLimits, HelperServer

from .conftest import wait_for, write_config
from .test_protocol import talk

pytestmark = [pytest.mark.timeout(60), pytest.mark.root]

NOBODY = 65534
USER = 1000


def limits(**kw) -> HelperLimits:
    base = dict(max_per_uid=8, rate_per_s=2.0, burst=10, rejected_interval_s=60.0)
    return HelperLimits(**{**base, **kw})


@pytest.fixture
def sockdir():
    base = Path(tempfile.mkdtemp(prefix="baomi-sock-"))  # every uid can traverse it
    base.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def make_server(sockdir: Path):
    servers = []

    def make(**kw) -> HelperServer:
        recorded: list[tuple[float, str, dict]] = []
        srv = HelperServer(sockdir / f"s{len(servers)}.sock",
                           lambda kind, **f: recorded.append((time.monotonic(), kind, f)), report_s=0.5, **kw)
        srv.recorded = recorded
        srv.start()
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        srv.stop()


class Child:
    """A forked process that becomes another uid (optionally logged in first) and runs fn(conn).

    fn gets a pipe end to report JSON on and returns when done; the child then
    waits for release() before exiting, so its sockets stay open meanwhile.
    """

    def __init__(self, uid: int, fn, loginuid: int | None = None) -> None:
        self.r, w = os.pipe()
        self.release_r, self.release_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            try:
                os.close(self.r)
                if loginuid is not None:  # as PAM does at login: a new audit session for this process
                    Path("/proc/self/loginuid").write_text(str(loginuid))
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
                try:
                    out = fn()
                except Exception as exc:
                    out = {"child_error": f"{type(exc).__name__}: {exc}"}
                os.write(w, (json.dumps(out) + "\n").encode())
                os.read(self.release_r, 1)
            finally:
                os._exit(0)
        os.close(w)
        self._buf = b""

    def result(self, timeout: float = 20.0):
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            import select
            ready, _, _ = select.select([self.r], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise TimeoutError("child did not answer")
            chunk = os.read(self.r, 65536)
            if not chunk:
                raise RuntimeError("child exited without an answer")
            self._buf += chunk
        return json.loads(self._buf.split(b"\n")[0])

    def release(self) -> None:
        os.write(self.release_w, b"x")
        os.waitpid(self.pid, 0)
        for fd in (self.r, self.release_r, self.release_w):
            os.close(fd)


def hold_helper(path: Path, uid: int, session: str | None = None):
    """In a child: connect as a helper of uid for session (its own audit session when None), stay connected."""
    def fn():
        sid = session or Path("/proc/self/sessionid").read_text().strip()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(str(path))
        s.sendall(encode({"type": "hello", "uid": uid, "session": sid}))
        answer = json.loads(s.recv(4096).splitlines()[0])
        hold_helper.keep = s  # stays open until the child exits
        return {"answer": answer, "session": sid}
    return fn


def test_rejected_hello_flood_is_one_event_per_uid_per_interval(make_server) -> None:
    srv = make_server(limits=limits(rejected_interval_s=1.5))

    def flood():
        answers = []
        for _ in range(300):
            try:
                got = talk(srv.path, {"type": "hello", "uid": 0, "session": "1"})
                answers.append(got[0]["type"] if got else "closed")
            except ConnectionError:  # refused at the door before the hello was written
                answers.append("closed")
        return answers

    child = Child(NOBODY, flood)
    try:
        answers = child.result()
    finally:
        child.release()
    assert len(answers) == 300 and set(answers) <= {"rejected", "closed"}, answers
    assert answers[:10] == ["rejected"] * 10
    # the first refusal is recorded at once, the rest are summed up at most once per interval
    assert wait_for(lambda: sum(f["details"]["count"] for _, _, f in srv.recorded) == 300, 5)
    events = srv.recorded
    assert all(kind == "helper.rejected" and f["severity"] == "high" for _, kind, f in events)
    assert all(f["details"]["peer_uid"] == NOBODY and f["user"]["uid"] == NOBODY for _, _, f in events)
    assert events[0][2]["details"]["count"] == 1 and events[0][2]["details"]["claimed_uid"] == 0
    assert 2 <= len(events) <= 3, [f["details"]["count"] for _, _, f in events]
    gaps = [b[0] - a[0] for a, b in zip(events, events[1:])]
    assert all(g >= 1.5 - 0.05 for g in gaps), gaps
    reasons = {}
    for _, _, f in events:
        for k, v in f["details"]["reasons"].items():
            reasons[k] = reasons.get(k, 0) + v
    # the burst got as far as the lie about the uid; the rest were refused at the door
    assert reasons.get("uid_mismatch", 0) >= 1 and reasons.get("rate_limit", 0) >= 250, reasons
    assert sum(reasons.values()) == 300


def test_held_open_connections_do_not_add_threads(make_server) -> None:
    srv = make_server()
    time.sleep(0.2)
    before = threading.active_count()

    def hold_500():
        held = []
        for _ in range(500):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(str(srv.path))
            held.append(s)
        hold_500.keep = held
        return len(held)

    child = Child(NOBODY, hold_500)
    try:
        assert child.result() == 500
        time.sleep(0.5)
        assert threading.active_count() <= before + CHECK_WORKERS, [t.name for t in threading.enumerate()]
        # nobody holds at most its cap, and the other uids' helpers still get in meanwhile
        assert srv.connections(NOBODY) <= 8
        got = talk(srv.path, {"type": "hello", "uid": os.getuid(), "session": "5"})
        assert got and got[0]["type"] == "welcome"
        assert threading.active_count() <= before + CHECK_WORKERS
    finally:
        child.release()
    assert wait_for(lambda: srv.connections(NOBODY) == 0, 10)   # the silent ones time out
    reasons = srv.recorded[0][2]["details"]["reasons"]
    assert set(reasons) <= {"rate_limit", "too_many_connections", "bad_hello"}
    assert len(srv.recorded) == 1   # one event now; the rest are counted into the next


def test_connections_per_uid_are_capped_and_rate_limited(make_server) -> None:
    srv = make_server(limits=limits(max_per_uid=3, burst=5, rate_per_s=0.1, rejected_interval_s=0.5))

    def open_some():
        held, answers = [], []
        for _ in range(6):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(0.5)
            s.connect(str(srv.path))
            try:
                answers.append(json.loads(s.recv(4096).splitlines()[0])["reason"])
            except (socket.timeout, IndexError):
                answers.append(None)   # admitted: the server waits for a hello
            held.append(s)
        open_some.keep = held
        return answers

    child = Child(NOBODY, open_some)
    try:
        answers = child.result()
        assert answers[:3] == [None, None, None]
        assert "already has 3 connections" in answers[3] and "already has 3 connections" in answers[4]
        assert "faster than 0.1/s" in answers[5]
        assert srv.connections(NOBODY) == 3
    finally:
        child.release()
    stopped = wait_for(lambda: sum(f["details"]["count"] for _, _, f in srv.recorded) == 3, 5)
    assert stopped, srv.recorded


def test_helper_of_another_uid_cannot_displace_a_session_helper(make_server) -> None:
    srv = make_server()   # no session check at all: only the uid of the helper in place
    first = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    first.settimeout(3)
    first.connect(str(srv.path))
    first.sendall(encode({"type": "hello", "uid": os.getuid(), "session": "9"}))
    assert b"welcome" in first.recv(4096)
    child = Child(NOBODY, lambda: talk(srv.path, {"type": "hello", "uid": NOBODY, "session": "9"}))
    try:
        answer = child.result()
    finally:
        child.release()
    assert answer[0]["type"] == "rejected" and "already has a helper of uid 0" in answer[0]["reason"]
    assert srv.helper_for("9").uid == os.getuid()
    first.close()


@pytest.fixture
def enforcer_without_logind(tmp_path: Path):
    ctx = open_context(load(write_config(tmp_path)))
    enf = Enforcer(ctx)   # not started: logind was never reached
    yield enf
    ctx.spool.close()


def test_session_claim_without_logind_needs_the_process_login_session(make_server, enforcer_without_logind) -> None:
    enf = enforcer_without_logind
    assert not enf.available.is_set()
    srv = make_server(check_session=enf.check_session)
    # uid 1000 logged in (PAM set its loginuid, the kernel gave it an audit session): its helper is welcomed
    owner = Child(USER, hold_helper(srv.path, USER), loginuid=USER)
    others = []
    try:
        got = owner.result()
        sid = got["session"]
        assert got["answer"]["type"] == "welcome", got
        assert wait_for(lambda: srv.helper_for(sid), 3) and srv.helper_for(sid).uid == USER
        # nobody, never logged in, claims that session under its own uid: refused, the owner's helper stays
        others.append(Child(NOBODY, lambda: talk(srv.path, {"type": "hello", "uid": NOBODY, "session": sid})))
        answer = others[-1].result()
        assert answer[0]["type"] == "rejected" and "no login session" in answer[0]["reason"]
        # nobody with a login session of its own claims uid 1000's: refused too
        others.append(Child(NOBODY, lambda: talk(srv.path, {"type": "hello", "uid": NOBODY, "session": sid}),
                            loginuid=NOBODY))
        answer = others[-1].result()
        assert answer[0]["type"] == "rejected" and f"not session {sid} of uid {NOBODY}" in answer[0]["reason"]
        assert srv.helper_for(sid).uid == USER and srv.helper_for(sid).peer.pid == owner.pid
        kinds = [(k, f["details"]["peer_uid"]) for _, k, f in srv.recorded]
        assert kinds == [("helper.rejected", NOBODY)]   # the second refusal of nobody waits for the interval
    finally:
        for c in others:
            c.release()
        owner.release()
