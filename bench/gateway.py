#!/usr/bin/env python3
"""What holding writes until they are judged costs: copying through the gateway vs
copying straight to the same medium's real mount, in the same run, same filesystem
type, a fresh loop medium for every measurement.

    sudo .venv/bin/python bench/gateway.py [--fstype exfat|ext4|vfat] [--quick]

Each copy is timed as `cp -r SRC DST && sync`: sync is inside the timing so page-cache
write-back flatters neither side. The gateway runs in a process of its own (as in the
agent, with the agent's defaults; --sync = `[enforce] gateway_sync = true`) with a judge
that reads every staged file looking for markings. A third column copies the same
files to a folder on the host's own disk, where staging lives: a design that holds every
byte until judged writes it there first, so direct / (direct + host) is the best it can
reach on this machine ("bound"). A fourth puts the same files on a fresh medium the way
a commit does (hidden name, then rename over the target; no FUSE, no judge): direct /
(commit + host) is the best an atomic hold-then-commit reaches ("commit bound").
Prints figures; asserts none.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MARKS = ("机密★1年".encode(), b"TOP SECRET")
SYNC = False
TARGETS = {"large": 85.0, "small": 70.0, "p99_ms": 300.0, "rss_mb": 150.0}


def judge(staged):
    """Reads the whole staged file looking for markings (chunked, so the gateway's RSS
    is its own and not a mapping of the file)."""
    from baomi.agent.gateway import Judgement
    keep = max(len(x) for x in MARKS)
    tail = b""
    with open(staged.host_path, "rb") as f:
        while chunk := f.read(1 << 20):
            buf = tail + chunk
            if any(x in buf for x in MARKS):
                return Judgement(commit=False)
            tail = buf[-keep:]
    return Judgement(commit=True)


def serve(roots: Path, key: str, mp: Path, sync: bool) -> None:
    """The gateway process: attach, say READY, serve until SIGTERM."""
    from baomi.agent.gateway.gateway import Gateway
    gw = Gateway(roots / "staging", 8 << 30, judge, lambda n, f: None, real_root=roots / "real",
                 view_root=roots / "view", durable=sync, fsync_commits=sync)
    gw.start()
    gw.attach(key, mp)
    print("READY", flush=True)
    stop = [False]
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
    while not stop[0]:
        time.sleep(0.1)
    gw.stop()


def sh(*cmd: str, **kw) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout.strip()


class Medium:
    MKFS = {"ext4": ["mkfs.ext4", "-q", "-F"], "exfat": ["mkfs.exfat"], "vfat": ["mkfs.vfat", "-F", "32"]}

    def __init__(self, work: Path, fstype: str, size_mb: int) -> None:
        self.work, self.fstype = work, fstype
        self.img = work / "medium.img"
        with open(self.img, "wb") as f:
            f.truncate(size_mb << 20)
        sh(*self.MKFS[fstype], str(self.img))
        self.dev = sh("losetup", "--find", "--show", str(self.img))
        self.mp = work / "usb"
        self.mp.mkdir(exist_ok=True)
        if fstype == "exfat":
            sh("mount.exfat-fuse", self.dev, str(self.mp))
        elif fstype == "vfat" and "vfat" not in Path("/proc/filesystems").read_text():
            sh("fusefat", "-o", "rw+", self.dev, str(self.mp))
        else:
            sh("mount", "-t", fstype, self.dev, str(self.mp))

    def close(self) -> None:
        subprocess.run(["umount", str(self.mp)], capture_output=True)
        for _ in range(50):
            if subprocess.run(["losetup", "-d", self.dev], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        self.img.unlink(missing_ok=True)


class Held:
    """A fresh medium behind a gateway process."""

    def __init__(self, work: Path, fstype: str, size_mb: int) -> None:
        self.medium = Medium(work, fstype, size_mb)
        self.roots = work / "gw"
        self.roots.mkdir(exist_ok=True)
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve", str(self.roots), "bench",
                                      str(self.medium.mp)] + (["--sync"] if SYNC else []),
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if "READY" not in line:
            raise SystemExit(f"gateway did not start: {line!r}")
        self.real = self.roots / "real" / "bench"

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def close(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(120)
        self.medium.close()


def timed_copy(src: Path, dst: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(["cp", "-r", str(src), str(dst)], check=True)
    subprocess.run(["sync"], check=True)
    return time.perf_counter() - t0


def timed_commits(src: Path, dst: Path, fstype: str) -> float:
    """The gateway's commit step alone, no FUSE and no judge: every file of src put on
    the medium the way a commit puts it there (hidden name, then rename over the
    target), timed with the final sync like the copies. What any hold-then-commit
    design pays at least for keeping half-written files invisible."""
    from baomi.agent.gateway.commit import OWNERLESS, copy_phase, rename_phase
    from baomi.agent.gateway.types import COMMIT_PREFIX
    t0 = time.perf_counter()
    root = os.open(dst, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for d, _dirs, files in os.walk(src):
            rel = os.path.relpath(d, src.parent)
            os.mkdir(rel, 0o755, dir_fd=root)
            for n in files:
                fd = os.open(os.path.join(d, n), os.O_RDONLY)
                try:
                    target = os.path.join(rel, n)
                    tmp = os.path.join(rel, COMMIT_PREFIX + n[:16])
                    copy_phase(root, tmp, target, fd, os.fstat(fd).st_size, True, 0o644, 0, 0, None,
                               fsync=SYNC, owners=fstype not in OWNERLESS)
                    rename_phase(root, tmp, target, fsync=SYNC)
                finally:
                    os.close(fd)
    finally:
        os.close(root)
    subprocess.run(["sync"], check=True)
    return time.perf_counter() - t0


def make_sources(base: Path, quick: bool) -> dict[str, tuple[Path, int, int, str]]:
    """name -> (path, bytes, files, kind)"""
    rnd = __import__("random").Random(1)
    block = os.urandom(1 << 20)

    def blob(n: int) -> bytes:
        reps = n // len(block) + 1
        off = rnd.randrange(0, len(block))
        return (block[off:] + block * reps)[:n]

    out = {}
    mixed = base / "mixed"
    total, files = 0, 0
    n_mixed = 200 if quick else 1000
    for i in range(n_mixed):
        d = mixed / f"dir{i % 20:02d}"
        d.mkdir(parents=True, exist_ok=True)
        r = rnd.random()
        # mostly office-sized documents, some larger ones, a few big: about 150 MB in all
        size = rnd.randint(2_000, 60_000) if r < 0.85 else rnd.randint(150_000, 1_200_000) if r < 0.99 \
            else rnd.randint(3_000_000, 6_000_000)
        (d / f"f{i:04d}.dat").write_bytes(blob(size))
        total += size
        files += 1
    out["mixed"] = (mixed, total, files, "mixed")
    big = base / "big"
    big.mkdir()
    gb = (256 if quick else 1024) << 20
    with open(big / "one.bin", "wb") as f:
        for _ in range(gb // len(block)):
            f.write(block)
    out["big"] = (big, gb, 1, "large")
    small = base / "small"
    n_small = 1000 if quick else 5000
    for i in range(n_small):
        d = small / f"d{i // 500:02d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"s{i:05d}.txt").write_bytes(blob(4096))
    out["small"] = (small, n_small * 4096, n_small, "small")
    return out


def latency(work: Path, fstype: str, quick: bool) -> dict[str, tuple[float, float, int]]:
    sizes = [("10 KB", 10 << 10, 50), ("1 MB", 1 << 20, 50), ("10 MB", 10 << 20, 30), ("50 MB", 50 << 20, 10)]
    if quick:
        sizes = [(n, s, max(5, r // 3)) for n, s, r in sizes]
    h = Held(work, fstype, 2048 if fstype != "vfat" else 1024)
    res = {}
    try:
        for name, size, reps in sizes:
            data = os.urandom(size)
            ms = []
            for i in range(reps):
                p = h.medium.mp / f"lat-{size}-{i}.bin"
                f = open(p, "wb", buffering=0)
                f.write(data)
                t0 = time.perf_counter()
                f.close()                          # returns once judged and committed
                ms.append((time.perf_counter() - t0) * 1000)
                assert os.path.getsize(h.real / p.name) == size
                if i % 5 == 4:
                    for q in h.medium.mp.glob(f"lat-{size}-*.bin"):
                        q.unlink()
            ms.sort()
            p99 = ms[min(len(ms) - 1, int(round(0.99 * (len(ms) - 1))))]
            res[name] = (statistics.median(ms), p99, reps)
        res["_rss"] = (h.peak_rss_mb(), 0, 0)
    finally:
        h.close()
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fstype", default="exfat", choices=["exfat", "ext4", "vfat"])
    ap.add_argument("--quick", action="store_true", help="smaller workloads (about 1/4)")
    ap.add_argument("--serve", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--sync", action="store_true",
                    help="the gateway fsyncs staged data and every commit at close ([enforce] gateway_sync)")
    a = ap.parse_args()
    global SYNC
    SYNC = a.sync
    if a.serve:
        serve(Path(a.serve[0]), a.serve[1], Path(a.serve[2]), SYNC)
        return
    if os.geteuid() != 0:
        raise SystemExit("needs root (loop devices, mounts)")
    from baomi.agent.gateway import available
    ok, why = available()
    if not ok:
        raise SystemExit(f"gateway unavailable: {why}")
    base = Path(tempfile.mkdtemp(prefix="baomi-bench-gw-"))
    print(f"gateway bench on {a.fstype} loop media ({os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}); every copy timed as 'cp -r && sync' (sync included so page-cache "
          f"write-back flatters neither side); gateway_sync={SYNC}")
    srcs = make_sources(base / "src", a.quick)
    rows, peak = [], 0.0
    try:
        for name, (src, nbytes, nfiles, kind) in srcs.items():
            size_mb = max(256, int(nbytes * 2.5) >> 20)
            if a.fstype == "vfat":
                size_mb = min(size_mb, 4000)
            work = base / f"direct-{name}"
            work.mkdir()
            m = Medium(work, a.fstype, size_mb)
            try:
                t_direct = timed_copy(src, m.mp)
            finally:
                m.close()
            work = base / f"commit-{name}"
            work.mkdir()
            m = Medium(work, a.fstype, size_mb)
            try:
                t_commit = timed_commits(src, m.mp, a.fstype)
            finally:
                m.close()
            host = base / f"host-{name}"
            t_host = timed_copy(src, host)
            subprocess.run(["rm", "-rf", str(host)])
            work = base / f"held-{name}"
            work.mkdir()
            h = Held(work, a.fstype, size_mb)
            try:
                t_held = timed_copy(src, h.medium.mp)
                peak = max(peak, h.peak_rss_mb())
            finally:
                h.close()
            rows.append((name, kind, nfiles, nbytes, t_direct, t_held, t_host, t_commit))
        lat_dir = base / "latency"
        lat_dir.mkdir()
        lat = latency(lat_dir, a.fstype, a.quick)
        peak = max(peak, lat.pop("_rss")[0])
    finally:
        for p in sorted(base.glob("*/gw/real"), reverse=True):   # the private bind of each real root
            subprocess.run(["umount", "-l", str(p)], capture_output=True)
        subprocess.run(["rm", "-rf", str(base)])
    print(f"\n{'workload':<28}{'direct s':>10}{'gateway s':>11}{'host s':>8}{'commit s':>10}{'direct MB/s':>13}"
          f"{'gateway MB/s':>14}{'gateway/direct':>16}{'target':>8}{'bound':>7}{'commit bound':>14}")
    figures = {"fstype": a.fstype, "copies": [], "latency_ms": {}, "peak_rss_mb": round(peak, 1)}
    for name, kind, nfiles, nbytes, td, th, thost, tcommit in rows:
        label = {"mixed": f"cp -r {nfiles} mixed files", "big": f"one {nbytes >> 20} MB file",
                 "small": f"{nfiles} files of 4 KB"}[name]
        pct = 100 * td / th
        target = TARGETS["large"] if kind == "large" else TARGETS["small"]
        bound = 100 * td / (td + thost)
        # the commits alone on top of the host copy: the best an atomic hold-then-commit reaches
        commit_bound = 100 * td / (tcommit + thost)
        print(f"{label + f' ({nbytes / 1e6:.0f} MB)':<28}{td:>10.2f}{th:>11.2f}{thost:>8.2f}{tcommit:>10.2f}"
              f"{nbytes / 1e6 / td:>13.1f}{nbytes / 1e6 / th:>14.1f}{pct:>15.0f}%{'>=' + str(int(target)) + '%':>8}"
              f"{bound:>6.0f}%{commit_bound:>13.0f}%")
        figures["copies"].append({"workload": label, "direct_s": round(td, 3), "gateway_s": round(th, 3),
                                  "host_s": round(thost, 3), "percent_of_direct": round(pct, 1),
                                  "commit_s": round(tcommit, 3), "target_percent": target,
                                  "hold_bound_percent": round(bound, 1), "commit_bound_percent": round(commit_bound, 1)})
    print(f"\n{'close -> committed':<28}{'median ms':>10}{'p99 ms':>11}{'runs':>6}")
    for name, (med, p99, reps) in lat.items():
        target = f"p99 target < {TARGETS['p99_ms']:.0f} ms" if name != "50 MB" else "(no target)"
        print(f"{name:<28}{med:>10.1f}{p99:>11.1f}{reps:>6}   {target}")
        figures["latency_ms"][name] = {"median": round(med, 1), "p99": round(p99, 1), "runs": reps}
    print(f"\npeak RSS of the gateway process: {peak:.1f} MB (target < {TARGETS['rss_mb']:.0f} MB)")
    if a.json:
        Path(a.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
