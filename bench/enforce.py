#!/usr/bin/env python3
"""Copy-enforcement speed on real loop media (run as root from the repository root):

1. latency: from the writer's close() of a marked file to the file being off
   the medium, for 10 KB, 1 MB, 10 MB and 50 MB files (median and p99);
2. throughput: `cp -r` of 1,000 mixed files to the medium with the agent
   stopped, then running (same files, same medium, same run).

The agent runs as its own process (the enforcement component with the real
scanner, as under `baomi-agent run`). Targets: p99 < 300 ms up to 10 MB;
throughput with the agent >= 85% of the agent-stopped figure.

    .venv/bin/python bench/enforce.py [--fs exfat|ext4 ...] [--quick]
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from baomi.agent import quarantine as q  # noqa: E402
from tests.support import enforce_files as docs  # noqa: E402
from tests.support.enforce_harness import AgentProcess  # noqa: E402
from tests.support.media import LoopMedium  # noqa: E402

SIZES = [("10 KB", 10 * 1024, 60), ("1 MB", 1024 * 1024, 40), ("10 MB", 10 * 1024 * 1024, 20),
         ("50 MB", 50 * 1024 * 1024, 6)]


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(p / 100 * len(s) + 0.5)) - 1))]


def make_tree(root: Path, n: int = 1000, seed: int = 7) -> int:
    """1,000 mixed files: mostly small office-sized text, some MB-sized, 1% marked."""
    rnd = random.Random(seed)
    total = 0
    for i in range(n):
        size = rnd.choice([2_000, 8_000, 30_000, 120_000, 400_000]) if i % 50 else 2_000_000
        data = docs.filler(size, marked=(i % 100 == 13)) + f"\n{i}\n".encode()
        p = root / f"dir{i % 10}" / f"file{i:04}.txt"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        total += len(data)
    return total


def timed_copy(src: Path, dst: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(["cp", "-r", str(src), str(dst)], check=True)
    os.sync()
    return time.perf_counter() - t0


def start_agent(conf: Path, medium: dict, mp: Path) -> AgentProcess:
    """The agent as a daemon runs: its scanning processes already started (a marked
    file blocked once)."""
    agent = AgentProcess(conf, medium)
    warm = mp / "warm-up.txt"
    warm.write_bytes(docs.filler(10_000, marked=True))
    t0 = time.time()
    while warm.exists() and time.time() - t0 < 30:
        time.sleep(0.01)
    if warm.exists():
        agent.stop()
        raise SystemExit("bench/enforce.py: the agent did not block the warm-up file within 30 s; "
                         f"nothing measured. Its output:\n{agent.proc.stderr.read()[-2000:]}")
    return agent


def bench_fs(fstype: str, quick: bool) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="baomi-bench-"))
    _, pub = q.keygen(tmp / "keys")
    state = tmp / "state"
    conf = tmp / "agent.toml"
    conf.write_text(f'[paths]\nstate_dir = "{state}"\n[quarantine]\npublic_key = "{pub}"\n'
                    f'max_bytes = {8 * 1024**3}\n[scan]\nrule_dirs = []\n')
    src = tmp / "src"
    total = make_tree(src)
    os.sync()
    with LoopMedium(fstype, size_mb=1024, workdir=tmp) as loop:
        mp = loop.mount()
        medium = {"key": f"{loop.devnode}:{loop.fs_uuid}", "devnode": loop.devnode, "mountpoint": str(mp),
                  "read_only": False, "medium_class": "personal", "level_ceiling": None,
                  "identity": {"fs_uuid": loop.fs_uuid, "devnode": loop.devnode, "fs_type": fstype}}
        os.sync()
        # throughput: agent stopped / running in turn, the order swapped every round, so both
        # see the same cache and disk state and neither always goes first
        stopped, running = [], []
        agent = None
        rounds = 2 if quick else 4
        try:
            for rnd in range(rounds):
                for running_now in ((False, True) if rnd % 2 == 0 else (True, False)):
                    if not running_now:
                        if agent is not None:
                            agent.stop()
                            agent = None
                        stopped.append(timed_copy(src, mp / f"off{rnd}"))
                        continue
                    if agent is None:
                        agent = start_agent(conf, medium, mp)
                    running.append(timed_copy(src, mp / f"on{rnd}"))
                    deadline = time.time() + 300  # let the agent finish before going on
                    while time.time() < deadline and any((mp / f"on{rnd}").rglob("file*13.txt")):
                        time.sleep(0.1)
                    time.sleep(1)
                for d in (mp / f"off{rnd}", mp / f"on{rnd}"):
                    shutil.rmtree(d, ignore_errors=True)
                os.sync()
            if agent is None:  # the latency runs below need it
                agent = start_agent(conf, medium, mp)
            print(f"\n== {fstype} ==")
            off, on = statistics.median(stopped), statistics.median(running)
            print(f"throughput, cp -r of 1000 mixed files ({total / 1e6:.0f} MB), median of {len(stopped)}: "
                  f"agent stopped {total / off / 1e6:.1f} MB/s ({off:.2f} s), agent running "
                  f"{total / on / 1e6:.1f} MB/s ({on:.2f} s) -> {off / on * 100:.0f}% (target >= 85%)")
            print(f"latency close -> off the medium (marked files), {'size':>6}: median / p99 / max over n runs")
            for label, size, runs in SIZES:
                runs = max(3, runs // 4) if quick else runs
                lat = []
                base = docs.filler(size, marked=True)
                for r in range(runs):
                    path = mp / f"lat-{size}-{r}.txt"
                    with open(path, "wb") as f:
                        f.write(base[:-40] + os.urandom(20).hex().encode())  # new content every run
                    t0 = time.perf_counter()
                    while os.path.exists(path):
                        if time.perf_counter() - t0 > 30:
                            raise SystemExit(f"{path} was not removed within 30 s")
                        time.sleep(0.0005)
                    lat.append(time.perf_counter() - t0)
                print(f"  {label:>6}: {statistics.median(lat) * 1000:7.1f} ms / {pct(lat, 99) * 1000:7.1f} ms / "
                      f"{max(lat) * 1000:7.1f} ms  (n={runs})")
        finally:
            if agent is not None:
                agent.stop()
        loop.unmount()
    shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fs", action="append", choices=["exfat", "ext4"], help="filesystem(s) (default: both)")
    ap.add_argument("--quick", action="store_true", help="fewer runs")
    args = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # figures appear as they are measured, also into a file
    if os.geteuid() != 0:
        print("bench/enforce.py needs root (loop devices, fanotify)", file=sys.stderr)
        return 2
    for fs in args.fs or ["exfat", "ext4"]:
        bench_fs(fs, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
