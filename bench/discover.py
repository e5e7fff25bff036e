#!/usr/bin/env python3
"""Discovery: the first full pass over a generated home-directory tree, then the incremental
pass after 1% of the files changed. The content engine is the real one (worker processes);
cpu_share is 1 so the figures measure the work, not the throttle.

    .venv/bin/python bench/discover.py [--files 2000] [--mb 100] [--jobs 1] [--dir D]
    .venv/bin/python bench/discover.py --full      # the issue's size: 20,000 files, 5 GB

Prints, per pass: seconds, files/s, MB/s read, files scanned, CPU share (agent + workers CPU
seconds / wall seconds) and peak RSS (the agent process and the largest worker). Targets: the
incremental pass under 5% of the full pass; peak RSS under 200 MB. Asserts nothing.
"""
from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

WORDS = "会议 纪要 通知 经营 计划 财务 报表 项目 进度 合同 条款 技术 方案 人员 安排 预算 审核 采购 销售 客户".split()
MARKS = ("机密★1年", "秘密★6个月", "绝密★长期")


def _text(rnd: random.Random, size: int, marked: bool) -> bytes:
    head = (rnd.choice(MARKS) + "\n") if marked else ""
    line = " ".join(rnd.choice(WORDS) for _ in range(12)) + "\n"
    body = (head + line * (size // len(line.encode()) + 1)).encode()
    return body[:max(size, len(head.encode()))]


def generate(root: Path, files: int, total_bytes: int, seed: int = 7) -> list[Path]:
    """users/<n>/<folder>/<file>.txt, sizes spread around the mean, 2% marked."""
    rnd = random.Random(seed)
    mean = max(256, total_bytes // files)
    out = []
    for i in range(files):
        p = root / f"user{i % 20}" / f"dir{(i // 20) % 50}" / f"doc{i}.txt"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(_text(rnd, int(rnd.uniform(0.2, 1.8) * mean), rnd.random() < 0.02))
        out.append(p)
    return out


def change(paths: list[Path], share: float, seed: int = 11) -> int:
    rnd = random.Random(seed)
    picked = rnd.sample(paths, max(1, int(len(paths) * share)))
    for p in picked:
        with open(p, "ab") as f:
            f.write(("修改 " + rnd.choice(WORDS) + "\n").encode())
    return len(picked)


def one_pass(cfg, jobs: int) -> dict:
    from baomi.agent.discovery.run import Discovery
    from baomi.agent.scan.engine import Scanner
    t0, c0 = time.monotonic(), os.times()
    with Scanner(cfg, jobs=jobs) as scanner:
        stats = Discovery(cfg, lambda *a, **k: None, scanner).run_pass()
    wall, c1 = time.monotonic() - t0, os.times()  # the workers are reaped: their CPU time is counted
    cpu = (c1.user - c0.user) + (c1.system - c0.system) + (c1.children_user - c0.children_user) + \
        (c1.children_system - c0.children_system)
    return {"s": wall, "files": stats.files, "scanned": stats.scanned, "found": stats.found, "cpu": cpu,
            "mb": stats.bytes / 1e6}


def show(name: str, r: dict) -> None:
    print(f"{name:<12} {r['s']:8.2f} s  {r['files'] / r['s']:9.0f} files/s  {r['mb'] / r['s']:7.1f} MB/s  "
          f"scanned {r['scanned']:6d}  found {r['found']:4d}  CPU share {r['cpu'] / r['s']:.2f} cores")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--mb", type=int, default=100)
    ap.add_argument("--full", action="store_true", help="20,000 files, 5 GB (the issue's figures)")
    ap.add_argument("--jobs", type=int, default=1, help="scanner workers (the agent's default [scan] jobs is 1)")
    ap.add_argument("--dir", help="where to build the tree (default: a temporary folder)")
    args = ap.parse_args()
    files, total = (20_000, 5_000_000_000) if args.full else (args.files, args.mb * 1_000_000)
    from baomi.agent.config import load
    tmp = Path(args.dir or tempfile.mkdtemp(prefix="baomi-discover-"))
    try:
        home = tmp / "home"
        t = time.monotonic()
        paths = generate(home, files, total)
        print(f"tree: {files} files, {total / 1e6:.0f} MB in {home} (generated in {time.monotonic() - t:.1f} s)")
        (tmp / "agent.toml").write_text(f'[host]\nclass = "unclassified"\n[paths]\nstate_dir = "{tmp}/state"\n'
                                        f'[discovery]\npaths = ["{home}"]\ncpu_share = 1.0\n')
        cfg = load(tmp / "agent.toml")
        full = one_pass(cfg, args.jobs)
        show("full", full)
        n = change(paths, 0.01)
        incr = one_pass(cfg, args.jobs)
        show(f"incremental", incr)
        print(f"changed {n} files (1%); incremental / full = {incr['s'] / full['s'] * 100:.1f}% (target < 5%)")
        agent_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        worker_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"peak RSS: agent {agent_mb:.0f} MB, largest worker {worker_mb:.0f} MB (target < 200 MB)")
    finally:
        if not args.dir:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
