from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.support.collector import Collector

PASSWORDS = {"sec1": ("secadmin", "Sec-Admin-Pass-2026"), "sys1": ("sysadmin", "Sys-Admin-Pass-2026"),
             "aud1": ("auditor", "Auditor-Pass-2026!")}
PASSPHRASE = "Sign-Policy-Passphrase-2026"


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> str | None:
    """None for the embedded SQLite file, or the URL of a fresh real PostgreSQL database."""
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("postgres_url")


def central_toml(collector: Collector, public_key: Path, extra: str = "") -> str:
    """agent.toml for an agent that delivers to `collector` at once (heartbeat every second)
    and trusts the security administrator's `public_key`; `extra`: more sections."""
    return f"""
[collector]
url = "{collector.url}"
token = "{collector.token()}"
heartbeat_s = 1
backoff_min_s = 0.2
backoff_max_s = 1
[central]
public_key = "{public_key}"
{extra}"""


def add_users(collector: Collector) -> None:
    for name, (role, password) in PASSWORDS.items():
        collector.cli("user", "add", name, "--role", role, input=password + "\n")


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no csrf_token field in the page"
    return m.group(1)


def login(collector: Collector, name: str) -> httpx.Client:
    c = httpx.Client(base_url=collector.url, follow_redirects=False, timeout=60)
    page = c.get("/login")
    r = c.post("/login", data={"username": name, "password": PASSWORDS[name][1], "csrf_token": csrf_of(page.text)})
    assert r.status_code == 303, r.text[:500]
    return c


def create_key(sec: httpx.Client, passphrase: str = PASSPHRASE) -> httpx.Response:
    csrf = csrf_of(sec.get("/policy").text)
    return sec.post("/policy/key", data={"passphrase": passphrase, "passphrase2": passphrase, "csrf_token": csrf})


def current_cells(html: str) -> dict[str, str]:
    """The matrix as the secadmin's form shows it: cell -> selected action."""
    out = {}
    for m in re.finditer(r'<select name="cell\.([^"]+)"[^>]*>(.*?)</select>', html, re.S):
        sel = re.search(r'<option value="([^"]+)" selected>', m.group(2))
        assert sel, f"no selected action for {m.group(1)}"
        out[m.group(1)] = sel.group(1)
    return out


def publish(sec: httpx.Client, changes: dict[str, str], passphrase: str = PASSPHRASE) -> httpx.Response:
    """What the browser's form posts: every cell of the matrix, some changed."""
    page = sec.get("/policy").text
    cells = current_cells(page)
    assert cells, "the secadmin's policy page has no editable cells"
    cells.update(changes)
    data = {f"cell.{k}": v for k, v in cells.items()}
    data.update(passphrase=passphrase, csrf_token=csrf_of(page))
    return sec.post("/policy", data=data)


def save_public_key(sec: httpx.Client, path: Path) -> Path:
    r = sec.get("/policy/secadmin-policy.pub.pem")
    assert r.status_code == 200 and b"BEGIN PUBLIC KEY" in r.content
    path.write_bytes(r.content)
    return path
