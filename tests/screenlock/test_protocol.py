"""The helper socket: peer credentials are checked, liars are refused and recorded."""
from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
from pathlib import Path

import pytest

from baomi.agent.screenlock.protocol import ProtocolError, check_hello, decode, encode, peer_credentials
from baomi.agent.screenlock.server import HelperServer

from .conftest import wait_for

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def server():
    # a folder every uid can traverse (pytest's tmp_path is private to root)
    base = Path(tempfile.mkdtemp(prefix="baomi-sock-"))
    base.chmod(0o755)
    recorded: list[tuple[str, dict]] = []
    srv = HelperServer(base / "run" / "session.sock", lambda kind, **f: recorded.append((kind, f)),
                       report_s=0.5)
    srv.recorded = recorded
    srv.start()
    yield srv
    srv.stop()
    shutil.rmtree(base, ignore_errors=True)


def talk(path: Path, *msgs: dict) -> list[dict]:
    """Connect, send messages, return what the daemon answered before closing or going quiet."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(3)
    s.connect(str(path))
    for m in msgs:
        s.sendall(encode(m) if isinstance(m, dict) else m)
    out = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            out += chunk
            if b"welcome" in out:
                break
    except socket.timeout:
        pass
    s.close()
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_socket_is_open_to_every_user_but_checked(server: HelperServer) -> None:
    assert oct(server.path.stat().st_mode & 0o777) == "0o666"


def test_honest_helper_is_welcomed(server: HelperServer) -> None:
    got = talk(server.path, {"type": "hello", "version": 1, "uid": os.getuid(), "session": "5", "desktop": "gnome"})
    assert got and got[0]["type"] == "welcome" and got[0]["report_s"] == 0.5
    assert not server.recorded


def test_helper_lying_about_its_uid_is_refused(server: HelperServer) -> None:
    got = talk(server.path, {"type": "hello", "version": 1, "uid": 4242, "session": "5"})
    assert got[0]["type"] == "rejected" and "4242" in got[0]["reason"]
    kind, ev = server.recorded[0]
    assert kind == "helper.rejected" and ev["severity"] == "high"
    assert ev["details"]["claimed_uid"] == 4242 and ev["details"]["peer_uid"] == os.getuid()
    assert ev["details"]["peer_pid"] == os.getpid()
    assert ev["user"]["uid"] == os.getuid()
    assert server.helper_for("5") is None


@pytest.mark.root
def test_unprivileged_process_claiming_root_is_refused(server: HelperServer) -> None:
    """A real other uid (setuid in a forked child) claims to be root."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: become nobody, connect, claim uid 0
        try:
            os.close(r)
            os.setgid(65534)
            os.setuid(65534)
            answer = talk(server.path, {"type": "hello", "version": 1, "uid": 0, "session": "1"})
            os.write(w, json.dumps(answer).encode())
        finally:
            os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    answer = json.loads(os.read(r, 65536) or b"[]")
    os.close(r)
    assert answer and answer[0]["type"] == "rejected"
    kind, ev = server.recorded[0]
    assert kind == "helper.rejected"
    assert ev["details"]["peer_uid"] == 65534 and ev["details"]["claimed_uid"] == 0
    assert ev["user"]["name"] in ("nobody", "65534")


def test_garbage_instead_of_hello_is_refused(server: HelperServer) -> None:
    got = talk(server.path, b"GET / HTTP/1.0\n")
    assert got[0]["type"] == "rejected" and "not JSON" in got[0]["reason"]
    assert server.recorded[0][0] == "helper.rejected"


def test_session_check_refuses_someone_elses_session(tmp_path: Path) -> None:
    recorded = []
    owners = {"7": 1000}
    srv = HelperServer(tmp_path / "s.sock", lambda kind, **f: recorded.append((kind, f)),
                       check_session=lambda sid, uid, _pid: None if owners.get(sid) == uid
                       else f"session {sid} belongs to uid {owners.get(sid)}, not {uid}")
    srv.start()
    try:
        got = talk(srv.path, {"type": "hello", "uid": os.getuid(), "session": "7"})
        assert got[0]["type"] == "rejected" and "belongs to uid 1000" in got[0]["reason"]
        assert recorded[0][1]["details"]["claimed_session"] == "7"
    finally:
        srv.stop()


def test_peer_credentials_are_the_kernels() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    cred = peer_credentials(a)
    assert (cred.pid, cred.uid, cred.gid) == (os.getpid(), os.getuid(), os.getgid())
    a.close(), b.close()


@pytest.mark.parametrize("line,problem", [
    (b"[1,2]", "JSON object"),
    (b'{"type": 3}', "string 'type'"),
    (b"\xff\xfe", "not JSON"),
])
def test_decode_names_the_problem(line: bytes, problem: str) -> None:
    with pytest.raises(ProtocolError, match=problem):
        decode(line)


@pytest.mark.parametrize("hello,problem", [
    ({"type": "state"}, "first message must be 'hello'"),
    ({"type": "hello", "uid": "0", "session": "1"}, "hello.uid"),
    ({"type": "hello", "uid": True, "session": "1"}, "hello.uid"),
    ({"type": "hello", "uid": 0, "session": ""}, "hello.session"),
])
def test_hello_is_validated(hello: dict, problem: str) -> None:
    with pytest.raises(ProtocolError, match=problem):
        check_hello(hello)


def test_second_helper_of_a_session_replaces_the_first(server: HelperServer) -> None:
    hello = encode({"type": "hello", "uid": os.getuid(), "session": "9"})
    first = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    first.settimeout(3)
    first.connect(str(server.path))
    first.sendall(hello)
    assert b"welcome" in first.recv(4096)
    assert wait_for(lambda: server.helper_for("9"), 3)
    got = talk(server.path, {"type": "hello", "uid": os.getuid(), "session": "9"})
    assert got[0]["type"] == "welcome"
    rest = b""
    while chunk := first.recv(4096):
        rest += chunk
    assert decode(rest.strip().splitlines()[0]) == {"type": "replaced"}
    first.close()
    assert not server.recorded


def test_socket_limits_come_from_agent_toml(tmp_path: Path) -> None:
    from baomi.agent.config import load
    from baomi.agent.screenlock.server import HelperLimits
    from baomi.common.tomlconf import ConfigError

    from .conftest import write_config

    cfg = load(write_config(tmp_path, helper_max_connections_per_uid=3, helper_connect_rate_per_s=0.5,
                            helper_connect_burst=4, helper_rejected_interval_s=10.0))
    assert HelperLimits.from_config(cfg.screenlock) == HelperLimits(3, 0.5, 4, 10.0)
    assert HelperLimits.from_config() == HelperLimits(8, 2.0, 10, 60.0)   # ScreenlockSection's defaults
    with pytest.raises(ConfigError, match="helper_max_connections_per_uid"):
        load(write_config(tmp_path, helper_max_connections_per_uid=0))
