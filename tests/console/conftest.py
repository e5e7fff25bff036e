"""A real collector process (uvicorn) with the console, seeded with realistic events,
and a headless Debian Chromium driven by Playwright."""
from __future__ import annotations

import datetime as dt
import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from baomi.service import config as config_mod
from baomi.service import db
from baomi.service.console import auth
from tests.console import seed

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PASSWORDS = {"sys1": ("sysadmin", "Sys-Admin-Pass-2026"), "sec1": ("secadmin", "Sec-Admin-Pass-2026"),
             "aud1": ("auditor", "Auditor-Pass-2026!"), "lockme": ("secadmin", "Lock-Me-Pass-2026"),
             "sec2": ("secadmin", "Sec-Two-Pass-2026!")}
N_EVENTS = 600
TIME_ZONE = "Asia/Shanghai"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Console:
    url: str
    engine: sa.Engine
    cfg: config_mod.CollectorConfig
    rows: list[dict] = field(default_factory=list)   # the seeded agent events
    hostile_pk: int = 0

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, follow_redirects=False, timeout=30)

    def login(self, name: str, password: str | None = None) -> httpx.Client:
        c = self.client()
        r = login(c, name, PASSWORDS[name][1] if password is None else password)
        assert r.status_code == 303, r.text[:500]
        return c


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no csrf_token field in the page"
    return m.group(1)


def login(c: httpx.Client, name: str, password: str) -> httpx.Response:
    page = c.get("/login")
    return c.post("/login", data={"username": name, "password": password, "csrf_token": csrf_of(page.text)})


def start_server(cfg_path: Path, url: str, log: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "tests.console.serve", str(cfg_path)], cwd=REPO,
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url + "/login", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"collector did not start: {log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.2)


def make_console(tmp: Path, artifacts: Path, database_url: str | None = None) -> tuple[Console, subprocess.Popen]:
    port = free_port()
    lines = [f'listen = "127.0.0.1:{port}"', f'state_dir = "{tmp / "state"}"', "offline_after_s = 300"]
    if database_url:
        lines.append(f'database_url = "{database_url}"')
    # the office is in Shanghai (UTC+8), the test machine's clock usually not: times on pages are +8 h
    lines += ["[console]", f'time_zone = "{TIME_ZONE}"', "max_failed_logins = 3", "lockout_s = 600",
              "session_ttl_s = 1800"]
    cfg_path = tmp / "collector.toml"
    cfg_path.write_text("\n".join(lines) + "\n")
    cfg = config_mod.load(cfg_path)
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    db.upgrade(cfg.url)
    engine = db.make_engine(cfg.url)
    now = dt.datetime.now(dt.timezone.utc)
    rows = list(seed.make_rows(N_EVENTS, now=now - dt.timedelta(minutes=10), days=6))
    seed.insert_rows(engine, iter(rows))
    hostile = seed.hostile_row(now)
    seed.insert_rows(engine, iter([hostile]))
    rows.append(hostile)
    seed.insert_agents(engine, now)
    with engine.begin() as conn:
        for name, (role, password) in PASSWORDS.items():
            auth.add_user(conn, name, role, password, by="test-setup")
        hostile_pk = conn.execute(sa.select(db.events.c.pk).where(
            db.events.c.event_id == hostile["event_id"])).scalar_one()
    url = f"http://127.0.0.1:{port}"
    log = artifacts / "console" / "collector.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    proc = start_server(cfg_path, url, log)
    return Console(url, engine, cfg, rows, hostile_pk), proc


@pytest.fixture(scope="session")
def console(tmp_path_factory: pytest.TempPathFactory, artifacts: Path):
    tmp = tmp_path_factory.mktemp("console")
    c, proc = make_console(tmp, artifacts)
    try:
        yield c
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        c.engine.dispose()


@pytest.fixture(scope="session")
def shots(artifacts: Path) -> Path:
    out = artifacts / "console"
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"needs Debian chromium at {CHROMIUM} (installed by scripts/setup)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("needs the playwright package (test extra)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()
