"""Central policy rollout: N simulated agents (default 1,000) against one real
collector process. Prints the time from a change published in the console to
50 / 99 / 100 % of the agents running it, as the collector's agents table (what
the console's hosts page shows) sees it, next to the target: one heartbeat
interval. Also the collector's CPU per heartbeat (steady state, and during the
rollout) and the size of the signed document an agent fetches (200, and the 304
that an unchanged ETag gets).

Each simulated agent is a real enrolled agent with its own Ed25519 key, enrolled
through the agent's own enrollment code (baomi.agent.enroll) with a token from
`baomi-collector token create --count N`. It sends a signed heartbeat batch
every --interval seconds (the fleet's phases spread evenly over the interval),
reads `policy_version` from the answer and, when it differs from the running
one, hands it to the agent's own CentralPolicy.offer (GET /api/v1/policy with
If-None-Match, baomi.common.central.judge against the installed public key,
central-policy.json kept, the table swapped, policy.applied recorded), then
reports the new version in a heartbeat at once, as the agent's uploader does.
The heartbeat details come from baomi.agent.heartbeat; batches are chained and
built with the spool's and uploader's own code. Only the spool's SQLite file is
replaced by a list in memory.

The security administrator is a console account (`baomi-collector user add`):
the bench logs in, makes the signing key (POST /policy/key) and publishes one
changed cell (POST /policy with CSRF token and passphrase), as the browser does.

    .venv/bin/python bench/policy.py                       # 1,000 agents, 30 s interval, SQLite
    .venv/bin/python bench/policy.py --quick               # 100 agents, 10 s interval
    .venv/bin/python bench/policy.py --db postgresql       # a throw-away PostgreSQL server
    .venv/bin/python bench/policy.py --db postgresql://u:p@host/db

Collector CPU is user+system seconds of its process (psutil) over a window,
divided by the batches it answered in that window.
"""
from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import csv
import gzip
import io
import os
import re
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import base64  # noqa: E402

import httpx  # noqa: E402
import psutil  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from baomi.agent.agent_key import Identity  # noqa: E402
from baomi.agent.central import CentralPolicy  # noqa: E402
from baomi.agent.config import AgentConfig, CollectorSection  # noqa: E402
from baomi.agent.context import AgentContext  # noqa: E402
from baomi.agent.enroll import enroll  # noqa: E402
from baomi.agent.heartbeat import heartbeat_details  # noqa: E402
from baomi.agent.spool import Spool  # noqa: E402
from baomi.agent.uploader import Uploader  # noqa: E402
from baomi.common import events as ev  # noqa: E402
from baomi.service import db  # noqa: E402
from tests.support.collector import Collector  # noqa: E402

SECADMIN, SECADMIN_PASSWORD = "secadmin1", "Rollout-Signer-2026!"
PASSPHRASE = "Bench-Policy-Passphrase-2026"
CHANGED_CELL = "unclassified.personal.internal"
TLS = ssl.create_default_context()
out = Console(highlight=False, width=int(os.environ.get("COLUMNS", "132")))


def say(msg: str) -> None:
    out.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {msg}")


# -- one simulated agent ---------------------------------------------------------------------

class MemorySpool:
    """What the agent's code asks of its spool, in memory: events are chained with the
    spool's own code (Spool._chain) and wait here until the collector acknowledges them."""
    _chain = Spool._chain

    def __init__(self, agent_id: str, host: dict[str, Any]):
        self.agent_id, self.host = agent_id, host
        self.seq, self.last_hash = 0, ""
        self.pending: list[dict[str, Any]] = []
        self.meta: dict[str, str] = {}
        self.lock = threading.Lock()   # CentralPolicy records from a worker thread

    def record(self, kind: str, **fields: Any) -> dict[str, Any]:
        with self.lock:
            self.seq += 1
            stored = self._chain(ev.make_event(kind, **fields), self.seq, self.last_hash)
            self.last_hash = stored["hash"]
            self.pending.append(stored)
            return stored

    def ack(self, upto: int) -> None:
        with self.lock:
            self.pending = [e for e in self.pending if e["seq"] > upto]

    def depth(self) -> int:
        return len(self.pending)

    def oldest_unacked_time(self) -> str | None:
        return self.pending[0]["time"] if self.pending else None

    def get_meta(self, key: str, default: str = "") -> str:
        return self.meta.get(key, default)

    def set_meta(self, key: str, value: str) -> None:
        self.meta[key] = value


@dataclass
class Stats:
    batches: list[float] = field(default_factory=list)          # monotonic time of each 200 answer
    latency: list[tuple[float, float]] = field(default_factory=list)  # (answered at, seconds) per batch
    batch_errors: list[str] = field(default_factory=list)
    fetches: dict[int, int] = field(default_factory=dict)       # status -> count
    fetch_bytes: list[int] = field(default_factory=list)        # body bytes of 200 answers
    outcomes: dict[str, int] = field(default_factory=dict)      # CentralPolicy.offer outcomes
    reported: dict[str, float] = field(default_factory=dict)    # agent -> when its new-version heartbeat was acked
    applied: dict[str, float] = field(default_factory=dict)     # agent -> when it applied the document
    late: list[float] = field(default_factory=list)             # how late each heartbeat left (bench lag)
    announced: dict[str, float] = field(default_factory=dict)   # agent -> first answer naming a newer version


class Bridge:
    """The synchronous client CentralPolicy.offer expects, over the agent's asyncio client:
    offer runs in a worker thread, its GET runs on the event loop."""

    def __init__(self, client: httpx.AsyncClient, loop: asyncio.AbstractEventLoop, stats: Stats):
        self.client, self.loop, self.stats = client, loop, stats

    def get(self, path: str, headers: dict[str, str]) -> httpx.Response:
        resp = asyncio.run_coroutine_threadsafe(self.client.get(path, headers=headers), self.loop).result()
        self.stats.fetches[resp.status_code] = self.stats.fetches.get(resp.status_code, 0) + 1
        if resp.status_code == 200:
            self.stats.fetch_bytes.append(len(resp.content))
        return resp


class SimAgent:
    def __init__(self, i: int, url: str, state: Path, public_key: Path, interval: float):
        self.name = f"bench-PC{i:04d}"
        cfg = AgentConfig()
        cfg.host.name = self.name
        cfg.paths.state_dir = state
        cfg.central.public_key = public_key
        cfg.collector = CollectorSection(url=url, heartbeat_s=interval)
        state.mkdir(parents=True, exist_ok=True)
        identity = Identity(Ed25519PrivateKey.generate())
        self.agent_id = identity.agent_id
        self.spool = MemorySpool(self.agent_id, {"id": self.agent_id, "name": self.name, "class": cfg.host.class_})
        self.ctx = AgentContext(cfg, identity, self.spool)  # type: ignore[arg-type]
        self.central = CentralPolicy(self.ctx)
        self.ctx.central = self.central
        # the uploader's own batch envelope (Uploader.body reads only .identity)
        self.uploader = Uploader.__new__(Uploader)
        self.uploader.identity = identity
        self.batch = 0
        self.client: httpx.AsyncClient | None = None

    def enroll(self, token: str, client: httpx.Client) -> None:
        cfg = self.ctx.config.collector
        enroll(cfg, self.ctx.identity, self.spool, self.ctx.host, token=token, client=client)  # type: ignore[arg-type]

    async def send(self, stats: Stats, pool: concurrent.futures.Executor) -> None:
        """Deliver what waits, then act on the announced policy version like the uploader:
        fetch/judge/apply, and after an apply a heartbeat at once."""
        assert self.client is not None
        loop = asyncio.get_running_loop()
        tries = 0
        while self.spool.pending:
            events = list(self.spool.pending)
            self.batch += 1
            raw = self.uploader.body(events, self.batch)
            headers = {"Content-Type": "application/json", "X-Baomi-Agent": self.agent_id,
                       "X-Baomi-Signature": base64.b64encode(self.ctx.identity.sign(raw)).decode("ascii")}
            sent = time.monotonic()
            try:
                resp = await self.client.post("/api/v1/events", content=raw, headers=headers)
            except httpx.HTTPError as exc:
                resp, err = None, f"{type(exc).__name__}: {exc}"
            if resp is None or resp.status_code != 200:
                stats.batch_errors.append(err if resp is None else f"{resp.status_code}: {resp.text[:120]}")
                tries += 1
                if tries > 3:
                    return
                await asyncio.sleep(1.0)
                continue
            now = time.monotonic()
            stats.batches.append(now)
            stats.latency.append((now, now - sent))
            answer = resp.json()
            self.spool.ack(int(answer.get("acked", 0)))
            if self.central.running and any(e["kind"] == "agent.heartbeat" and e["details"].get("policy_version")
                                            == f"central:{self.central.running}" for e in events):
                stats.reported.setdefault(self.agent_id, now)
            announced = answer.get("policy_version")
            if self.central.wants(announced):
                stats.announced.setdefault(self.agent_id, now)
                outcome = await loop.run_in_executor(pool, self.central.offer, announced,
                                                     Bridge(self.client, loop, stats))
                stats.outcomes[outcome] = stats.outcomes.get(outcome, 0) + 1
                if outcome == "apply":
                    stats.applied[self.agent_id] = time.monotonic()
                    self.beat()   # the collector learns the new version at once

    def beat(self) -> None:
        self.ctx.record("agent.heartbeat", details=heartbeat_details(self.ctx))

    async def run(self, first: float, interval: float, stop: asyncio.Event, stats: Stats,
                  pool: concurrent.futures.Executor) -> None:
        # the agent's own HTTP defaults (keep-alive 5 s: a new connection every heartbeat); one
        # TLS context for the whole fleet, or making 1,000 of them stalls the loop for seconds
        async with httpx.AsyncClient(base_url=self.ctx.config.collector.url, timeout=30, verify=TLS) as self.client:
            at = first
            while not stop.is_set():
                try:
                    await asyncio.wait_for(stop.wait(), max(0.0, at - time.monotonic()))
                    break
                except asyncio.TimeoutError:
                    pass
                now = time.monotonic()
                stats.late.append(now - at)
                self.beat()
                await self.send(stats, pool)
                at = max(at, now) + interval   # the uploader: next beat one interval after this one


# -- the collector's side ------------------------------------------------------------------------

def cpu_s(proc: psutil.Process | None, children: bool = True) -> float:
    """User+system CPU seconds of proc, and with children=True of its live and reaped children
    (PostgreSQL's backends)."""
    if proc is None:
        return 0.0
    t = proc.cpu_times()
    total = t.user + t.system + ((t.children_user + t.children_system) if children else 0.0)
    for child in proc.children(recursive=True) if children else ():
        try:
            c = child.cpu_times()
            total += c.user + c.system
        except psutil.NoSuchProcess:
            pass
    return total


class Profile:
    """py-spy (when installed; not a dependency) sampling the collector's threads that hold the
    GIL, i.e. its Python CPU, into collapsed stacks: `--profile PREFIX` writes PREFIX-steady.txt
    and PREFIX-rollout.txt."""

    def __init__(self, prefix: str | None, pid: int):
        self.prefix, self.pid, self.proc = prefix, pid, None
        self.exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        if prefix and not Path(self.exe).exists():
            raise SystemExit("--profile needs py-spy (pip install py-spy)")

    def start(self, phase: str) -> None:
        if self.prefix:
            self.proc = subprocess.Popen([self.exe, "record", "--pid", str(self.pid), "--gil", "--nonblocking",
                                          "--rate", "250", "--format", "raw", "--output",
                                          f"{self.prefix}-{phase}.txt"], stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(30)
            self.proc = None


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    if not m:
        raise SystemExit("no csrf_token in the console page")
    return m.group(1)


def console_login(url: str) -> httpx.Client:
    c = httpx.Client(base_url=url, follow_redirects=False, timeout=60)
    r = c.post("/login", data={"username": SECADMIN, "password": SECADMIN_PASSWORD,
                               "csrf_token": csrf_of(c.get("/login").text)})
    if r.status_code != 303:
        raise SystemExit(f"console login failed: {r.status_code} {r.text[:300]}")
    return c


def form_cells(html: str) -> dict[str, str]:
    """The matrix as the security administrator's form shows it: cell -> selected action."""
    cells = {}
    for m in re.finditer(r'<select name="cell\.([^"]+)"[^>]*>(.*?)</select>', html, re.S):
        sel = re.search(r'<option value="([^"]+)" selected>', m.group(2))
        if sel:
            cells[m.group(1)] = sel.group(1)
    return cells


def publish(sec: httpx.Client) -> tuple[float, float, str]:
    """What the browser posts: every cell of the form, one changed. Returns (sent at, answered
    at) in monotonic time and the new action."""
    page = sec.get("/policy").text
    cells = form_cells(page)
    if CHANGED_CELL not in cells:
        raise SystemExit(f"the policy form has no {CHANGED_CELL} cell")
    new = "block" if cells[CHANGED_CELL] != "block" else "notify"
    data = {f"cell.{k}": v for k, v in cells.items()}
    data.update({f"cell.{CHANGED_CELL}": new, "passphrase": PASSPHRASE, "csrf_token": csrf_of(page)})
    t0 = time.monotonic()
    r = sec.post("/policy", data=data)
    t1 = time.monotonic()
    if r.status_code != 201:
        raise SystemExit(f"publishing failed: {r.status_code} {r.text[:300]}")
    return t0, t1, new


def running(engine: sa.Engine, version: int) -> set[str]:
    """The agents the collector shows running `version` (the hosts page's policy column)."""
    A = db.agents
    with engine.connect() as conn:
        return {r[0] for r in conn.execute(sa.select(A.c.agent_id).where(A.c.policy_version == f"central:{version}"))}


def pct_time(times: list[float], n: int, p: float) -> float | None:
    """When p % of n agents had got there (times sorted, relative), None if they never did."""
    k = max(1, -(-n * p // 100))  # ceil
    k = int(k)
    return times[k - 1] if len(times) >= k else None


def header_bytes(resp: httpx.Response) -> int:
    status = len(f"HTTP/1.1 {resp.status_code} {resp.reason_phrase}\r\n")
    return status + sum(len(k) + len(v) + 4 for k, v in resp.headers.raw) + 2


# -- the run -----------------------------------------------------------------------------------

def run(a: argparse.Namespace, work: Path, url: str | None, db_pid: int | None = None) -> int:
    n, interval = a.agents, a.interval
    a.db_proc = psutil.Process(db_pid) if db_pid else None
    collector = Collector(work / "collector", url)
    collector.start()
    try:
        return _run(a, work, collector, n, interval, url)
    finally:
        collector.stop()


def _run(a: argparse.Namespace, work: Path, collector: Collector, n: int, interval: float, url: str | None) -> int:
    proc = psutil.Process(collector.proc.pid)  # type: ignore[union-attr]
    engine = db.make_engine(url or db.default_sqlite_url(collector.folder / "state"))
    say(f"collector pid {proc.pid} at {collector.url} ({'SQLite' if url is None else url.split('@')[-1]})")

    # the security administrator: an account, a console session, the signing key, its public half
    collector.cli("user", "add", SECADMIN, "--role", "secadmin", input=SECADMIN_PASSWORD + "\n")
    sec = console_login(collector.url)
    r = sec.post("/policy/key", data={"passphrase": PASSPHRASE, "passphrase2": PASSPHRASE,
                                      "csrf_token": csrf_of(sec.get("/policy").text)})
    if r.status_code != 201:
        raise SystemExit(f"making the signing key failed: {r.status_code} {r.text[:300]}")
    pem = work / "secadmin-policy.pub.pem"
    pem.write_bytes(sec.get("/policy/secadmin-policy.pub.pem").content)

    # the fleet: one token each (the rollout's `token create --count`), enrolled by the agent's code
    tokens = [row["token"] for row in csv.DictReader(io.StringIO(
        collector.cli("token", "create", "--count", str(n), "--csv").stdout))]
    assert len(tokens) == n, f"{len(tokens)} tokens for {n} agents"
    agents = [SimAgent(i, collector.url, work / "agents" / f"{i:04d}", pem, interval) for i in range(n)]
    say(f"enrolling {n} agents")
    t0 = time.monotonic()
    done = 0
    lock = threading.Lock()
    with httpx.Client(base_url=collector.url, timeout=60) as client:
        def one(pair: tuple[SimAgent, str]) -> None:
            nonlocal done
            pair[0].enroll(pair[1], client)
            with lock:
                done += 1
                if done % max(1, n // 10) == 0 or done == n:
                    say(f"  enrolled {done}/{n} ({done / (time.monotonic() - t0):.0f}/s)")
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            list(pool.map(one, zip(agents, tokens)))
    enroll_s = time.monotonic() - t0
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(db.agents)).scalar_one() == n

    return asyncio.run(_drive(a, agents, collector, proc, engine, sec, n, interval, enroll_s))


async def _drive(a: argparse.Namespace, agents: list[SimAgent], collector: Collector, proc: psutil.Process,
                 engine: sa.Engine, sec: httpx.Client, n: int, interval: float, enroll_s: float) -> int:
    stats = Stats()
    stop = asyncio.Event()
    # CentralPolicy.offer blocks its thread for the fetch: as many threads as agents (each real
    # agent has its own uploader thread), made only when that many offers are under way at once
    pool = concurrent.futures.ThreadPoolExecutor(n, thread_name_prefix="offer")
    start = time.monotonic() + 0.5
    # phases spread evenly over one interval: the fleet has been running a while
    tasks = [asyncio.create_task(ag.run(start + interval * i / n, interval, stop, stats, pool))
             for i, ag in enumerate(agents)]
    say(f"{n} agents heartbeating every {interval:g} s; warming up for one interval")
    await asyncio.sleep(0.5 + interval)
    say(f"steady state: measuring collector CPU for {a.steady:g} interval(s)")
    me = psutil.Process()
    prof = Profile(a.profile, proc.pid)
    prof.start("steady")
    c0, s0, b0, m0, d0 = cpu_s(proc), time.monotonic(), len(stats.batches), cpu_s(me, False), cpu_s(a.db_proc)
    await asyncio.sleep(interval * a.steady)
    c1, s1, b1, m1, d1 = cpu_s(proc), time.monotonic(), len(stats.batches), cpu_s(me, False), cpu_s(a.db_proc)
    prof.stop()
    steady_batches = b1 - b0
    steady_ms = (c1 - c0) * 1000 / max(1, steady_batches)

    say(f"publishing a change in the console ({CHANGED_CELL})")
    prof.start("rollout")
    cpu_pub0, db_pub0 = cpu_s(proc), cpu_s(a.db_proc)
    t_sent, t_answered, new_action = await asyncio.to_thread(publish, sec)
    with engine.connect() as conn:
        from baomi.service import central as service_central
        version = service_central.latest_version(conn)
    say(f"version {version} published ({(t_answered - t_sent) * 1000:.0f} ms for the POST); "
        f"watching the collector's agents table")
    seen: dict[str, float] = {}
    deadline = t_sent + interval * a.give_up
    next_line = time.monotonic() + max(1.0, interval / 6)
    while time.monotonic() < deadline and len(seen) < n:
        now = time.monotonic()
        for agent_id in await asyncio.to_thread(running, engine, version):
            seen.setdefault(agent_id, now)
        if time.monotonic() >= next_line:
            say(f"  {time.monotonic() - t_sent:5.1f} s: {len(seen)}/{n} agents run version {version}")
            next_line += max(1.0, interval / 6)
        await asyncio.sleep(a.poll)
    t_end = time.monotonic()
    cpu_end, db_end = cpu_s(proc), cpu_s(a.db_proc)
    prof.stop()
    rollout_batches = sum(1 for t in stats.batches if t_sent <= t <= t_end)
    rollout_ms = (cpu_end - cpu_pub0) * 1000 / max(1, rollout_batches)
    rollout_fetches = sum(stats.fetches.values())
    converged = len(seen)

    # the document's size on the wire: what a fetch answers, and an unchanged ETag's 304
    probe = agents[0]
    async with httpx.AsyncClient(base_url=collector.url, timeout=30) as c:
        full = await c.get("/api/v1/policy", headers={"X-Baomi-Agent": probe.agent_id, "Accept-Encoding": "gzip"})
        cached = await c.get("/api/v1/policy", headers={"X-Baomi-Agent": probe.agent_id,
                                                        "If-None-Match": full.headers.get("etag", "")})
    stop.set()
    await asyncio.gather(*tasks)
    pool.shutdown()
    engine.dispose()

    # -- figures
    seen_t = sorted(t - t_sent for t in seen.values())
    rep_t = sorted(t - t_sent for t in stats.reported.values())
    wire = int(full.headers.get("content-length") or len(full.content))
    encoding = full.headers.get("content-encoding", "")
    gz = len(gzip.compress(full.content, 6))

    def fmt(v: float | None) -> str:
        return "—" if v is None else f"{v:.2f} s"

    def verdict(v: float | None) -> str:
        if v is None:
            return "[red]not reached[/red]"
        return f"{v / interval:.2f} × interval " + ("[green]within[/green]" if v <= interval else "[red]over[/red]")

    out.print()
    t = Table(title=f"policy rollout: {n} agents, heartbeat every {interval:g} s, "
                    f"{'SQLite' if a.db == 'sqlite' else a.db.split('@')[-1]}, {os.cpu_count()} CPUs")
    t.add_column("figure")
    t.add_column("measured", justify="right")
    t.add_column("peer", justify="right")
    t.add_column("vs peer")
    t.add_row("console POST /policy (sign + store)", f"{(t_answered - t_sent) * 1000:.0f} ms", "", "")
    for p in (50, 99, 100):
        v = pct_time(seen_t, n, p)
        t.add_row(f"change → {p} % running it (collector's view)", fmt(v),
                  f"{interval:g} s (one interval)", verdict(v))
    v = pct_time(rep_t, n, 99)
    t.add_row("change → 99 % reported (agents' side)", fmt(v), f"{interval:g} s", verdict(v))
    v = pct_time(sorted(t - t_answered for t in seen.values()), n, 99)
    t.add_row("stored (POST answered) → 99 % (collector)", fmt(v), f"{interval:g} s", verdict(v))
    fetch = sorted(stats.applied[k] - stats.announced[k] for k in stats.applied if k in stats.announced)
    report = sorted(stats.reported[k] - stats.applied[k] for k in stats.reported if k in stats.applied)
    if fetch and report:
        t.add_row("per agent: announced → applied, p50 / p99",
                  f"{statistics.median(fetch) * 1000:.0f} / {fetch[int(len(fetch) * 0.99)] * 1000:.0f} ms", "", "")
        t.add_row("per agent: applied → reported, p50 / p99",
                  f"{statistics.median(report) * 1000:.0f} / {report[int(len(report) * 0.99)] * 1000:.0f} ms", "", "")
    t.add_row("collector CPU per batch, steady", f"{steady_ms:.2f} ms",
              f"{steady_batches} batches / {s1 - s0:.0f} s", f"{(c1 - c0) / (s1 - s0) * 100:.1f} % of one CPU")
    t.add_row("collector CPU per batch, rollout", f"{rollout_ms:.2f} ms",
              f"{rollout_batches} batches + {rollout_fetches} fetches / {t_end - t_sent:.0f} s",
              f"{(cpu_end - cpu_pub0) / (t_end - t_sent) * 100:.1f} % of one CPU")
    if a.db_proc is not None:
        t.add_row("PostgreSQL CPU per batch, steady / rollout",
                  f"{(d1 - d0) * 1000 / max(1, steady_batches):.2f} / {(db_end - db_pub0) * 1000 / max(1, rollout_batches):.2f} ms",
                  "", "its backends, on top")
    for label, lo, hi in (("steady", s0, s1), ("rollout", t_sent, t_end)):
        lat = sorted(d for at, d in stats.latency if lo <= at <= hi)
        if lat:
            t.add_row(f"batch answered in, {label}, p50 / p99",
                      f"{statistics.median(lat) * 1000:.0f} / {lat[int(len(lat) * 0.99)] * 1000:.0f} ms", "", "")
    t.add_row("policy document, 200 body", f"{wire:,} B", f"gzip -6: {gz:,} B",
              f"served {'as ' + encoding if encoding else 'uncompressed'}")
    t.add_row("policy document, 200 headers", f"{header_bytes(full):,} B", "", "")
    t.add_row("unchanged ETag: 304 answer", f"{header_bytes(cached) + len(cached.content):,} B",
              f"status {cached.status_code}", "")
    t.add_row("fetches answered", ", ".join(f"{k}: {v}" for k, v in sorted(stats.fetches.items())) or "none",
              "", ", ".join(f"{k}: {v}" for k, v in sorted(stats.outcomes.items())))
    t.add_row("agents converged", f"{converged}/{n}", "", f"{len(stats.batch_errors)} batch errors")
    late = sorted(stats.late)
    t.add_row("bench process CPU, steady", f"{(m1 - m0) / (s1 - s0) * 100:.1f} % of one CPU",
              "heartbeat left late, p99", f"{late[int(len(late) * 0.99)] * 1000:.0f} ms" if late else "—")
    t.add_row("enrollment, 4 at a time", f"{enroll_s:.1f} s", f"{n / enroll_s:.0f} agents/s", "")
    out.print(t)
    out.print(f"An agent learns of the new version at its first heartbeat after the document is stored, so the "
              f"last one runs it about one interval + the POST ({(t_answered - t_sent) * 1000:.0f} ms) + one fetch "
              f"and one heartbeat after the change; 50 % at about half an interval. Collector's view: the agents "
              f"table (the hosts page); agents' side: the heartbeat naming the new version acknowledged. Per agent: "
              f"the answer announcing the version → fetched, verified and applied → that heartbeat acknowledged. "
              f"Rollout CPU counts heartbeats, reports and fetches, per batch.")
    if stats.batch_errors:
        out.print("first batch errors:", *stats.batch_errors[:5], sep="\n  ")
    if converged < n:
        out.print(f"[red]{n - converged} agent(s) did not report version {version} within "
                  f"{a.give_up:g} intervals[/red]")
        return 1
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agents", type=int, default=1000, help="simulated agents (default 1000)")
    ap.add_argument("--interval", type=float, default=30.0,
                    help="heartbeat interval in seconds, [collector] heartbeat_s (default 30)")
    ap.add_argument("--steady", type=float, default=1.0,
                    help="length of the steady-state CPU window, in intervals (default 1)")
    ap.add_argument("--give-up", type=float, default=3.0,
                    help="stop watching the rollout after this many intervals (default 3)")
    ap.add_argument("--poll", type=float, default=0.2, help="seconds between looks at the agents table")
    ap.add_argument("--db", default="sqlite",
                    help="sqlite (embedded, default), postgresql (a throw-away server, when its binaries are "
                         "installed) or a postgresql:// URL")
    ap.add_argument("--profile", metavar="PREFIX", help="sample the collector with py-spy into PREFIX-steady.txt "
                                                        "and PREFIX-rollout.txt (collapsed stacks)")
    ap.add_argument("--quick", action="store_true", help="100 agents, 10 s interval (a smoke run)")
    a = ap.parse_args()
    if a.quick:
        a.agents, a.interval = min(a.agents, 100), min(a.interval, 10.0)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    say(f"policy bench: {a.agents} agents, heartbeat every {a.interval:g} s, {os.cpu_count()} CPUs, "
        f"Python {sys.version.split()[0]}")
    server = None
    url: str | None = None
    db_pid: int | None = None
    if a.db == "postgresql":
        from tests.support.postgres import PostgresServer, find_bindir
        if find_bindir() is None:
            print("postgresql: server binaries not installed (apt-get install postgresql)", file=sys.stderr)
            return 2
        server = PostgresServer().start()
        url = server.url
        db_pid = int((server.dir / "data" / "postmaster.pid").read_text().split()[0])
    elif a.db != "sqlite":
        url = a.db
    try:
        with tempfile.TemporaryDirectory(prefix="baomi-bench-policy-") as tmp:
            return run(a, Path(tmp), url, db_pid)
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
