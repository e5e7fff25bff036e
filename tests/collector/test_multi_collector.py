"""Beyond one server: two collector processes on one real PostgreSQL behind a real
haproxy. One is killed (SIGKILL) while agents deliver through the balancer; nothing is
lost or stored twice, and a console session started before the kill goes on working."""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.console.conftest import csrf_of
from tests.support.collector import COLLECTOR, REPO, Collector, SigningAgent
from tests.support.haproxy import HAProxy, haproxy_binary
from tests.support.sender import LoopingAgent, chain_problems

pytestmark = pytest.mark.timeout(300)
needs_haproxy = pytest.mark.skipif(haproxy_binary() is None, reason="haproxy not installed (scripts/setup)")

AGENTS, EVENTS = 4, 400
PASSWORD = "Sec-Admin-Pass-2026"


def _login(base: str) -> httpx.Client:
    c = httpx.Client(base_url=base, follow_redirects=False, timeout=30)
    page = c.get("/login")
    r = c.post("/login", data={"username": "sec1", "password": PASSWORD, "csrf_token": csrf_of(page.text)})
    assert r.status_code == 303, r.text[:500]
    return c


def _two_collectors(tmp_path: Path, url: str) -> list[Collector]:
    # separate state dirs, as on two servers: only the database is shared
    cs = [Collector(tmp_path / f"c{i}", url) for i in (1, 2)]
    cs[0].cli("db", "upgrade")
    cs[0].cli("user", "add", "sec1", "--role", "secadmin", input=PASSWORD + "\n")
    return [c.start() for c in cs]


def _wait(what: str, done, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while not done():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@needs_haproxy
def test_killing_one_collector_loses_nothing_and_keeps_the_console_session(tmp_path: Path,
                                                                          postgres_url: str) -> None:
    c1, c2 = _two_collectors(tmp_path, postgres_url)
    try:
        with HAProxy(tmp_path / "lb", [f"127.0.0.1:{c1.port}", f"127.0.0.1:{c2.port}"]) as lb:
            console = _login(lb.url)
            assert console.get("/events").status_code == 200
            senders = []
            for i in range(AGENTS):
                a = SigningAgent(lb.url)
                assert a.enroll(c1.token(), name=f"办公-PC{i:02d}").status_code == 200
                senders.append(LoopingAgent(a, EVENTS).start())
            # mid-delivery: every agent has some events acked, none has all
            _wait("the first acks", lambda: all(s.acked >= 40 for s in senders))
            assert any(s.acked < EVENTS for s in senders)
            c1.kill()
            for s in senders:
                s.thread.join(240)
                assert not s.thread.is_alive(), f"agent stuck at {s.acked}/{EVENTS}: {s.errors[-5:]}"
                assert s.unexpected == []
            # the session made before the kill works on the survivor, for reads and for forms
            page = console.get("/events")
            assert page.status_code == 200 and "login" not in str(page.url)
            assert console.post("/logout", data={"csrf_token": csrf_of(page.text)}).status_code == 303
            assert console.get("/events").status_code == 303  # logged out everywhere
        stored = c2.stored()
        problems = [p for s in senders for p in chain_problems(stored, s.agent.agent_id, EVENTS)]
        assert problems == []
        assert sum(e["agent_id"] != "collector" for e in stored) == AGENTS * EVENTS
    finally:
        c1.kill()
        c2.stop()


def test_a_login_form_served_by_one_collector_is_accepted_by_another(tmp_path: Path, postgres_url: str) -> None:
    """The login form's CSRF key is in the shared database, not in one collector's state dir."""
    c1, c2 = _two_collectors(tmp_path, postgres_url)
    try:
        first = httpx.Client(base_url=c1.url, follow_redirects=False, timeout=30)
        page = first.get("/login")
        second = httpx.Client(base_url=c2.url, follow_redirects=False, timeout=30, cookies=first.cookies)
        r = second.post("/login", data={"username": "sec1", "password": PASSWORD, "csrf_token": csrf_of(page.text)})
        assert r.status_code == 303, r.text[:300]
        first.cookies.update(second.cookies)  # the session made on c2 is good on c1
        assert first.get("/events").status_code == 200
    finally:
        c1.stop()
        c2.stop()


def test_two_collectors_starting_at_once_migrate_one_fresh_database(tmp_path: Path, postgres_url: str) -> None:
    """serve runs the migrations; the advisory lock in migrations/env.py makes the second wait."""
    cs = [Collector(tmp_path / f"c{i}", postgres_url) for i in (1, 2)]
    runs = [subprocess.Popen([*COLLECTOR, "db", "upgrade", "--config", str(c.config)], cwd=REPO, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE) for c in cs]
    for p in runs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    for c in cs:
        c.start()
    try:
        a = SigningAgent(cs[1].url)
        assert a.enroll(cs[0].token()).status_code == 200
        assert a.send([a.event()]).json()["acked"] == 1
    finally:
        for c in cs:
            c.stop()
