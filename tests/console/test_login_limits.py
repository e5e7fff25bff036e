"""Lock-out holds against parallel guesses: each attempt is counted in the
database before its password is verified, per account and per source address,
so 40 concurrent wrong passwords verify at most max_failed_logins of them, on
SQLite and on PostgreSQL, and two collector processes share the counts."""
from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.collector import Collector

pytestmark = pytest.mark.timeout(240)

PASSWORD = "Right-Pass-Word-2026"


def login(url: str, name: str, password: str) -> int:
    with httpx.Client(base_url=url, timeout=60) as c:
        page = c.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        return c.post("/login", data={"username": name, "password": password, "csrf_token": token}).status_code


def failures(c: Collector, reason: str | None = None) -> list[dict]:
    rows = c.stored(kind="console.login_failed")
    return [r for r in rows if reason is None or r["details"]["reason"] == reason]


@pytest.fixture(params=["sqlite", "postgresql"])
def collectors(request, tmp_path: Path):
    url = None if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    extra = "[console]\nmax_failed_logins = 5\nmax_failed_logins_per_address = 12\nlockout_s = 600\n"
    a = Collector(tmp_path / "a", url, extra=extra)
    a.cli("db", "upgrade")
    for name in ("victim", "other"):
        a.cli("user", "add", name, "--role", "secadmin", input=PASSWORD + "\n")
    a.start()
    b = None
    if url is not None:  # a second process on the same PostgreSQL
        b = Collector(tmp_path / "b", url, extra=extra).start()
    try:
        yield a, b or a
    finally:
        a.stop()
        if b is not None:
            b.stop()


def test_parallel_wrong_passwords_cannot_bypass_lockout(collectors) -> None:
    a, b = collectors
    urls = [a.url, b.url] * 20
    with ThreadPoolExecutor(40) as pool:
        codes = list(pool.map(lambda u: login(u, "victim", "Wrong-Guess-2026!"), urls))
    assert codes == [401] * 40
    verified = failures(a, "bad_password")
    assert len(verified) <= 5, f"{len(verified)} passwords were verified, the limit is 5"
    assert len(a.stored(kind="console.lockout")) == 1
    # locked: the right password does not help now
    assert login(a.url, "victim", PASSWORD) == 401


def test_per_address_limit_holds_across_accounts(collectors) -> None:
    a, b = collectors
    urls = [a.url, b.url] * 20
    names = [f"user{i}" for i in range(40)]
    with ThreadPoolExecutor(40) as pool:
        codes = list(pool.map(lambda p: login(p[0], p[1], "Wrong-Guess-2026!"), zip(urls, names)))
    assert codes == [401] * 40
    checked = failures(a, "unknown_or_disabled")
    assert len(checked) <= 12, f"{len(checked)} attempts checked, the address limit is 12"
    assert len(a.stored(kind="console.address_lockout")) >= 1
    # the address is locked, even for a right password of another account
    assert login(b.url, "other", PASSWORD) == 401
