"""CPU and memory of a real `baomi-agent run` process, idle and at 10 events/s.

    .venv/bin/python bench/agent_idle.py [--seconds 20]

Starts a collector (SQLite, loopback) and an enrolled agent with the uploader
configured, then samples the agent's CPU% and RSS with psutil: first idle,
then while a second process records 10 events/s into the same spool (the
agent's uploader delivers them). Prints the figures beside the targets
(< 1% CPU idle, < 60 MB RSS).
"""
from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.collector import Collector  # noqa: E402


def sample(proc: psutil.Process, seconds: float) -> tuple[float, float]:
    """(average CPU % over the window, peak RSS in MB), children included."""
    procs = [proc, *proc.children(recursive=True)]
    t0 = sum(p.cpu_times().user + p.cpu_times().system for p in procs)
    w0 = time.monotonic()
    peak = 0.0
    while time.monotonic() - w0 < seconds:
        peak = max(peak, sum(p.memory_info().rss for p in procs) / 2**20)
        time.sleep(0.5)
    t1 = sum(p.cpu_times().user + p.cpu_times().system for p in procs)
    return 100.0 * (t1 - t0) / (time.monotonic() - w0), peak


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20.0)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="baomi-bench-"))
    collector = Collector(work / "collector").start()
    state = work / "agent" / "state"
    cfg = work / "agent" / "agent.toml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text(f'[host]\nname = "bench-PC"\n[paths]\nstate_dir = "{state}"\n'
                   f'[collector]\nurl = "{collector.url}"\ntoken = "{collector.token()}"\n'
                   f'[screenlock]\nenabled = false\n')
    agent = subprocess.Popen([str(REPO / ".venv/bin/baomi-agent"), "run", "--config", str(cfg)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        time.sleep(5)  # start-up, enrollment and first heartbeat are not idle
        proc = psutil.Process(agent.pid)
        idle_cpu, idle_rss = sample(proc, args.seconds)
        # 10 events/s into the agent's spool from another process, delivered by the agent's uploader
        stop = threading.Event()

        def produce() -> None:
            from baomi.agent.config import load
            from baomi.agent.context import open_context
            ctx = open_context(load(cfg))
            i = 0
            while not stop.wait(0.1):
                i += 1
                ctx.record("file.copied", action="audit", file={"name": f"公开-{i}.txt"}, details={"i": i})
            ctx.spool.close()

        t = threading.Thread(target=produce)
        t.start()
        time.sleep(1)
        busy_cpu, busy_rss = sample(proc, args.seconds)
        stop.set()
        t.join()
        time.sleep(2)
        delivered = len(collector.stored(kind="file.copied"))
    finally:
        agent.send_signal(signal.SIGTERM)
        try:
            agent.wait(30)
        except subprocess.TimeoutExpired:
            agent.kill()
        collector.kill()
        shutil.rmtree(work, ignore_errors=True)
    print(f"baomi-agent run, {args.seconds:.0f} s windows (fanotify enforcement + uploader):")
    print(f"  idle          CPU {idle_cpu:5.2f} %   RSS {idle_rss:6.1f} MB   (targets < 1 %, < 60 MB)")
    print(f"  10 events/s   CPU {busy_cpu:5.2f} %   RSS {busy_rss:6.1f} MB   ({delivered} events delivered)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
