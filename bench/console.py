"""Speed of the review console over a big store, measured through HTTP against the
real app (uvicorn in a child process).

Seeds N events (default 1,000,000) into SQLite, and into PostgreSQL when its
server binaries are installed, then prints p50/p95 of the event list with
typical filters and of the dashboard. The peer printed next to each figure is
the same query run directly on the database (no HTTP, no page), measured in the
same run, so the console's own overhead is visible.

    .venv/bin/python bench/console.py [--events 1000000] [--db sqlite,postgresql] [--requests 40]
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from baomi.service import config as config_mod  # noqa: E402
from baomi.service import db  # noqa: E402
from baomi.service.console import auth, queries, rollup  # noqa: E402
from tests.console import seed  # noqa: E402

COLUMNS = ("event_id", "agent_id", "seq", "time", "received_at", "kind", "severity", "host_name", "user_name",
           "level", "action", "file_name", "file_sha256", "status", "body")
PASSWORD = "Speed-Auditor-2026!"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bulk_seed(engine: sa.Engine, n: int, now: dt.datetime) -> float:
    t0 = time.perf_counter()
    rows = seed.make_rows(n, now=now, days=30, seed=1)
    if engine.dialect.name == "postgresql":
        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            with cur.copy(f"COPY events ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for r in rows:
                    copy.write_row([r[c] for c in COLUMNS])
            raw.commit()
            cur.execute("ANALYZE events")
            raw.commit()
        finally:
            raw.close()
    else:
        with engine.begin() as conn:
            conn.exec_driver_sql("PRAGMA synchronous=OFF")  # seeding only; the app runs with FULL
            batch = []
            for r in rows:
                batch.append(r)
                if len(batch) == 20000:
                    db.insert_events(conn, batch)
                    batch.clear()
            if batch:
                db.insert_events(conn, batch)
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    seed.insert_agents(engine, now)
    return time.perf_counter() - t0


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def measure(fn, n: int) -> tuple[float, float]:
    fn()  # warm
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), pct(times, 95)


def run_one(kind: str, url: str, n_events: int, n_requests: int, workdir: Path) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    port = free_port()
    cfg_path = workdir / f"{kind}.toml"
    lines = [f'listen = "127.0.0.1:{port}"', f'state_dir = "{workdir / kind}"']
    if url:
        lines.append(f'database_url = "{url}"')
    cfg_path.write_text("\n".join(lines) + "\n")
    cfg = config_mod.load(cfg_path)
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    db.upgrade(cfg.url)
    engine = db.make_engine(cfg.url)
    seconds = bulk_seed(engine, n_events, now)
    print(f"\n[{kind}] seeded {n_events:,} events in {seconds:.1f} s ({n_events / seconds:,.0f}/s)", flush=True)
    with engine.begin() as conn:
        auth.add_user(conn, "bench", "auditor", PASSWORD, by="bench")
    t0 = time.perf_counter()
    rollup.refresh(engine, now=now + dt.timedelta(seconds=rollup.GRACE_S + 5))
    print(f"[{kind}] first dashboard rollup over all {n_events:,} events: {time.perf_counter() - t0:.1f} s "
          "(once; later refreshes count only new events)", flush=True)

    proc = subprocess.Popen([sys.executable, "-m", "tests.console.serve", str(cfg_path)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(base + "/login", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        c = httpx.Client(base_url=base, timeout=60)
        page = c.get("/login").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        r = c.post("/login", data={"username": "bench", "password": PASSWORD, "csrf_token": token})
        assert r.status_code in (200, 303), r.status_code
        week_ago = (now - dt.timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%S")
        first = c.get("/events").text
        cursor = re.search(r'cursor=([A-Za-z0-9_\-]+)', first).group(1)
        cases = [
            ("events, no filter", "/events", {}),
            ("events, page 2 (cursor)", "/events", {"cursor": cursor}),
            ("events, host", "/events", {"host": "财务部-PC01"}),
            ("events, kind=file.blocked", "/events", {"kind": "file.blocked"}),
            ("events, severity=high, last 7 days", "/events", {"severity": "high", "since": week_ago}),
            ("events, user + level", "/events", {"user": "lina", "level": "secret"}),
            ("events, search file name", "/events", {"q": "财务报表"}),
            ("events, search hash", "/events", {"q": seed.hashlib.sha256("员工名单.csv5".encode()).hexdigest()}),
            ("events, search no match", "/events", {"q": "不存在的文件"}),
            ("events, oldest first", "/events", {"sort": "time_asc"}),
            ("dashboard 24h", "/dashboard", {}),
            ("dashboard 7d", "/dashboard", {"period": "7d"}),
            ("dashboard 30d", "/dashboard", {"period": "30d"}),
        ]
        print(f"{'request':38} {'HTTP p50':>9} {'HTTP p95':>9} {'DB p50':>8} {'DB p95':>8}   (ms)")
        for label, path, params in cases:
            def http() -> None:
                resp = c.get(path, params=params)
                assert resp.status_code == 200, (path, params, resp.status_code)
            h50, h95 = measure(http, n_requests)

            def direct() -> None:
                with engine.connect() as conn:
                    if path == "/dashboard":
                        queries.dashboard(conn, params.get("period", "24h"), cfg.offline_after_s)
                    else:
                        p = dict(params)
                        sort = p.pop("sort", "time_desc")
                        cur = p.pop("cursor", None)
                        queries.list_events(conn, queries.parse_filter(p), cur, sort)
            d50, d95 = measure(direct, n_requests)
            print(f"{label:38} {h50:9.1f} {h95:9.1f} {d50:8.1f} {d95:8.1f}", flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        engine.dispose()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--db", default="sqlite,postgresql")
    ap.add_argument("--requests", type=int, default=40)
    args = ap.parse_args()
    print(f"console bench: {args.events:,} events, {args.requests} requests per case, "
          f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory(prefix="baomi-bench-console-") as tmp:
        work = Path(tmp)
        for kind in args.db.split(","):
            if kind == "sqlite":
                run_one("sqlite", "", args.events, args.requests, work)
            elif kind == "postgresql":
                from tests.support.postgres import PostgresServer, find_bindir
                if find_bindir() is None:
                    print("\n[postgresql] skipped: server binaries not found (apt-get install postgresql)")
                    continue
                server = PostgresServer().start()
                try:
                    run_one("postgresql", server.url, args.events, args.requests, work)
                finally:
                    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
