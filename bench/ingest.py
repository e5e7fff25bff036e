"""Collector ingest throughput: a real collector process (uvicorn) and N
simulated agents (real Ed25519 signing, real HTTP, batches of 500) sending at
once; beside it, in the same run, the raw ceiling of the same database (the
same rows bulk-inserted without HTTP, signatures or checks). SQLite, and
PostgreSQL when its server binaries are installed.

Then the agent's own cost: bench/agent_idle.py (a real `baomi-agent run`,
idle and at 10 events/s), unless --agent-seconds 0.

    .venv/bin/python bench/ingest.py [--agents 4] [--events 100000] [--batch 500] [--db sqlite,postgresql] [--agent-seconds 20]

--batch 1 measures requests the size of a heartbeat (what idle PCs send).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import sqlalchemy as sa  # noqa: E402

from baomi.service import db  # noqa: E402
from baomi.service.ingest import row_of  # noqa: E402
from baomi.service.own_events import now  # noqa: E402
from tests.support.collector import Collector, SigningAgent  # noqa: E402

BATCH = 500


def event_batches(agent: SigningAgent, n: int, batch: int = BATCH) -> list[list[dict]]:
    events = [agent.event("file.copied", action="audit", file={"path": f"/media/u/报告{i}.docx", "sha256": "ab" * 32,
                                                                "level": "public", "size": 1234}) for i in range(n)]
    return [events[i:i + batch] for i in range(0, n, batch)]


def run_http(url: str | None, folder: Path, agents: int, total: int,
             batch: int = BATCH) -> tuple[float, list[float], float]:
    c = Collector(folder, url)
    with c:
        senders = [SigningAgent(c.url) for _ in range(agents)]
        for i, s in enumerate(senders):  # one name per host: the collector refuses a duplicate
            assert s.enroll(c.token(), name=f"bench-PC{i:02d}").status_code == 200
        work = [event_batches(s, total // agents, batch) for s in senders]
        latencies: list[float] = []
        lock = threading.Lock()

        def send(s: SigningAgent, batches: list[list[dict]]) -> None:
            for b in batches:
                raw = s.body(b)
                t = time.perf_counter()
                r = s.post(raw)
                dt = time.perf_counter() - t
                assert r.status_code == 200, r.text
                with lock:
                    latencies.append(dt)
        threads = [threading.Thread(target=send, args=(s, w)) for s, w in zip(senders, work)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - t0
        # queryable: the newest event of the last agent, found through the database
        engine = db.make_engine(url or db.default_sqlite_url(folder / "state"))
        t = time.perf_counter()
        with engine.connect() as conn:
            last = conn.execute(sa.select(sa.func.max(db.events.c.seq)).where(
                db.events.c.agent_id == senders[-1].agent_id)).scalar()
        query_s = time.perf_counter() - t
        assert last == total // agents
        engine.dispose()
    return elapsed, latencies, query_s


def run_raw(url: str, total: int, batch: int = BATCH) -> float:
    db.upgrade(url)
    engine = db.make_engine(url)
    agent = SigningAgent("http://unused")
    rows = [row_of(e, now()) for b in event_batches(agent, total, batch) for e in b]
    t = time.perf_counter()
    for i in range(0, len(rows), batch):
        with engine.begin() as conn:
            db.insert_events(conn, rows[i:i + batch])
    elapsed = time.perf_counter() - t
    engine.dispose()
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agents", type=int, default=4)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=BATCH, help="events per request")
    ap.add_argument("--db", default="sqlite,postgresql")
    ap.add_argument("--agent-seconds", type=float, default=20, help="length of each agent CPU/RSS window (0: skip)")
    a = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # figures appear as they are measured, also into a file
    import os
    print(f"ingest bench: {a.events:,} events from {a.agents} agents in batches of {a.batch}; {os.cpu_count()} CPUs")
    print(f"{'database':12}{'HTTP events/s':>15}{'raw insert/s':>15}{'ratio':>8}{'p50 batch ms':>14}{'p99 batch ms':>14}")
    for kind in a.db.split(","):
        tmp = Path(tempfile.mkdtemp(prefix=f"baomi-ingest-{kind}-"))
        server = None
        if kind == "postgresql":
            from tests.support.postgres import PostgresServer, find_bindir
            if find_bindir() is None:
                print("postgresql: server binaries not installed, skipped")
                continue
            server = PostgresServer().start()
            url, raw_url = server.url, None
        else:
            url, raw_url = None, f"sqlite:///{tmp / 'raw.db'}"
        try:
            elapsed, lat, query_s = run_http(url, tmp / "c", a.agents, a.events, a.batch)
            if server is not None:
                server.reset()
                raw_url = server.url
            raw = run_raw(raw_url, a.events, a.batch)
        finally:
            if server is not None:
                server.stop()
        lat.sort()
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
        print(f"{kind:12}{a.events / elapsed:>15,.0f}{a.events / raw:>15,.0f}{(a.events / elapsed) / (a.events / raw):>8.2f}"
              f"{statistics.median(lat) * 1000:>14.1f}{p99:>14.1f}   ({len(lat) / elapsed:,.0f} requests/s; "
              f"queryable after commit: {query_s * 1000:.1f} ms)")
    if a.agent_seconds > 0:
        import subprocess
        print("agent process:", flush=True)
        rc = subprocess.run([sys.executable, str(REPO / "bench" / "agent_idle.py"),
                             "--seconds", str(a.agent_seconds)]).returncode
        if rc:
            print(f"bench/agent_idle.py failed (exit {rc}): no agent figures", file=sys.stderr)
            return rc
    return 0


if __name__ == "__main__":
    sys.exit(main())
