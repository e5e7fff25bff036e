"""Scanner throughput against the Unix toolbox a user would otherwise script.

Generates a mixed corpus (text in several encodings, docx, xlsx, pptx, PDF,
OFD, zip and tar.gz archives, with and without markings), then in the same run:
  baomi:   baomi-agent scan --json (all worker processes)
  toolbox: rg on plain text, `unzip -p FILE | grep -E` on OOXML/OFD/zip,
           `pdftotext FILE - | grep -E` on PDFs, `tar -xzOf | grep -E` on tarballs
and prints files/s, MB/s, peak RSS (baomi and its workers), the same comparison
per kind of file, and the cost per small text file (2,000 files).

Then an image corpus (--images, default 200: scanned pages at 150 and 300 dpi,
slightly rotated and noisy, and photos; half marked), scanned by baomi (OCR)
and by the Tesseract command line with grep on the same pages in the same run:
OCR pages/s, marked pages found, false positives, and the latency of one
verdict (a warm worker's close → verdict) for a marked 300 dpi scan, p50/p99.

    .venv/bin/python bench/scan.py [--files 600] [--mb 200] [--jobs N] [--dir D] [--repeat 3] [--images 200]
    .venv/bin/python bench/scan.py --quick      # 150 files, 40 MB, one run, 20 images
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
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import psutil  # noqa: E402

from tests.support import docs  # noqa: E402

OCR_PATTERN = "(绝密|机密|秘密) ?.? ?([0-9]+ ?(年|个月)|长期|启用前)"  # grep's best effort at a star OCR misreads

PATTERN = "(绝密|机密|秘密)[★☆*＊]|TOP SECRET|SECRET//"
PROSE = ("本单位各部门应当按照年度工作计划，认真做好数据安全与信息化建设相关工作，加强组织领导，落实工作责任，"
         "确保各项任务按期完成。会议强调，要坚持统筹发展和安全，持续提升治理能力。")


def photo(rnd: random.Random, size: int) -> bytes:
    """Bytes that stand in for a JPEG photo: markers around incompressible data, as a real one is."""
    return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01" + rnd.randbytes(size) + b"\xff\xd9"


def make_corpus(root: Path, files: int, mb: int) -> None:
    """An office share: mostly small and medium documents, some with photos, a few long
    texts; one in seven marked. Files are added until both `files` and `mb` are reached."""
    rnd = random.Random(7)
    root.mkdir(parents=True, exist_ok=True)
    total, i = 0, 0
    while i < files or total < mb * 1_000_000:
        marked = i % 7 == 0
        head = ["机密★5年"] if marked else ["关于工作的通知"]
        long_text = i % 40 == 0
        n_para = rnd.randint(8000, 16000) if long_text else rnd.randint(20, 400)
        paras = head + [PROSE] * n_para
        pic = photo(rnd, rnd.randint(200_000, 2_500_000)) if rnd.random() < 0.5 else None
        kind = i % 10
        if kind in (0, 1, 2):
            enc = ("utf-8", "gb18030", "utf-16")[kind]
            path = root / f"t{i}.{enc}.txt"
            path.write_bytes("\n".join(paras).encode(enc))
        elif kind == 3:
            path = root / f"d{i}.docx"
            path.write_bytes(docs.docx(paras[:1 + n_para // 4], media=pic))
        elif kind == 4:
            path = root / f"x{i}.xlsx"
            path.write_bytes(docs.xlsx({"S": [[p] for p in paras[:300]]}))
        elif kind == 5:
            path = root / f"p{i}.pptx"
            path.write_bytes(docs.pptx([paras[:10], paras[10:30]], media=pic))
        elif kind in (6, 7):
            path = root / f"f{i}.pdf"
            path.write_bytes(docs.pdf([paras[j:j + 40] for j in range(0, min(len(paras), 400), 40)], image=pic))
        elif kind == 8:
            path = root / f"o{i}.ofd"
            path.write_bytes(docs.ofd([paras[:30]]))
        else:
            members = {"in/a.txt": "\n".join(paras[:400]).encode(), "in/b.docx": docs.docx(paras[:50], media=pic)}
            path = root / (f"a{i}.tar.gz" if i % 20 == 9 else f"a{i}.zip")
            path.write_bytes(docs.tar_gz(members) if path.name.endswith(".tar.gz") else docs.zip_of(members))
        total += path.stat().st_size
        i += 1


class PeakRSS:
    """Samples the RSS of a process tree every 20 ms."""

    def __init__(self, pid: int):
        self.proc, self.peak, self._stop = psutil.Process(pid), 0, threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                tree = [self.proc] + self.proc.children(recursive=True)
                self.peak = max(self.peak, sum(p.memory_info().rss for p in tree if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.02)

    def stop(self) -> int:
        self._stop.set()
        self._t.join()
        return self.peak


def run_baomi(root: Path, jobs: int) -> tuple[float, int, int]:
    t = time.perf_counter()
    p = subprocess.Popen([str(REPO / ".venv/bin/baomi-agent"), "scan", "--json", "--jobs", str(jobs), "--no-progress",
                          str(root)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    rss = PeakRSS(p.pid)
    out, _ = p.communicate()
    elapsed = time.perf_counter() - t
    import json
    secret = sum(1 for line in out.splitlines() if json.loads(line)["level"] == "secret")
    return elapsed, rss.stop(), secret


def run_toolbox(root: Path, jobs: int) -> float:
    from concurrent.futures import ThreadPoolExecutor

    def one(f: Path) -> None:
        name = f.name
        if name.endswith(".txt"):
            subprocess.run(["rg", "-q", "-e", PATTERN, "-E", name.split(".")[1], str(f)])
        elif name.endswith(".pdf"):
            subprocess.run(f"pdftotext -q {f} - | grep -qE '{PATTERN}'", shell=True)
        elif name.endswith(".tar.gz"):
            subprocess.run(f"tar -xzOf {f} | grep -aqE '{PATTERN}'", shell=True)
        else:
            subprocess.run(f"unzip -p {f} | grep -aqE '{PATTERN}'", shell=True)
    files = sorted(root.iterdir())
    t = time.perf_counter()
    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(one, files))
    return time.perf_counter() - t


STARTUP = r"""
import argparse, sys, time
t0 = time.perf_counter()
jobs = int(sys.argv[2])
if sys.argv[1] == "first":      # as `baomi-agent scan` does
    from baomi.agent.scan.spawn import start_workers
    started = start_workers(jobs)
else:
    started = []
from baomi.agent.commands.common import load_config
from baomi.agent.scan.engine import Scanner
from baomi.agent.scan.rules import RuleSet
cfg = load_config(argparse.Namespace(config=None))
with Scanner(cfg, RuleSet.for_config(cfg), jobs=jobs, prestarted=started) as s:
    list(s.scan_paths([sys.argv[3]]))
print(time.perf_counter() - t0)
"""


def startup_orders(tiny: Path, jobs: int, runs: int = 5) -> dict[str, float]:
    """A scan of the tiny files with the workers started before the configuration and
    rules are read, and after them: median of interleaved runs, each a fresh process."""
    times: dict[str, list[float]] = {"first": [], "after": []}
    for _ in range(runs):
        for order, ts in times.items():
            out = subprocess.run([str(REPO / ".venv/bin/python"), "-c", STARTUP, order, str(jobs), str(tiny)],
                                 check=True, capture_output=True, text=True).stdout
            ts.append(float(out))
    return {k: statistics.median(v) for k, v in times.items()}


KINDS = {"text (UTF-8, GB18030, UTF-16)": (".txt",), "OOXML and OFD": (".docx", ".xlsx", ".pptx", ".ofd"),
         "PDF": (".pdf",), "zip and tar.gz": (".zip", ".tar.gz")}


def by_kind(corpus: Path, root: Path, jobs: int) -> None:
    """The same comparison per kind of file (one run each, after a warm-up), and
    baomi's start-up (the scanner and its workers, on one tiny file per worker),
    which every row includes."""
    tiny = root / "tiny"
    tiny.mkdir(parents=True, exist_ok=True)
    for i in range(jobs):
        (tiny / f"{i}.txt").write_text("通知\n", encoding="utf-8")
    start = min(run_baomi(tiny, jobs)[0] for _ in range(3))
    print(f"by kind (one run each; baomi's rows include its start-up: {start:.2f} s for {jobs} tiny files):")
    for n in sorted({1, jobs}):
        o = startup_orders(tiny if n == jobs else tiny / "0.txt", n)
        print(f"  start-up with {n} worker(s), in-process: workers started before the configuration and rules are "
              f"read (as the command does) {o['first']:.3f} s, after them {o['after']:.3f} s")
    for kind, suffixes in KINDS.items():
        folder = root / kind.split()[0]
        if not folder.exists():
            folder.mkdir()
            for f in corpus.iterdir():
                if f.name.endswith(suffixes):
                    os.link(f, folder / f.name)
        files = list(folder.iterdir())
        mb = sum(f.stat().st_size for f in files) / 1e6
        run_toolbox(folder, jobs)
        b, t = run_baomi(folder, jobs)[0], run_toolbox(folder, jobs)
        print(f"  {kind:30} {len(files):4} files {mb:6.0f} MB   baomi {b:5.2f} s   toolbox {t:5.2f} s   {t / b:.2f}x")


def small_files(root: Path, n: int = 2000) -> tuple[float, float, float]:
    """ms per file: baomi as it runs (workers confined when run as root), baomi with
    workers that keep root (`worker_user = ""`: what the confinement costs), rg."""
    root.mkdir(parents=True, exist_ok=True)
    files = root / "files"
    files.mkdir(exist_ok=True)
    for i in range(n):
        (files / f"s{i}.txt").write_text(("机密★1年\n" if i % 10 == 0 else "") + f"第{i}号 会议纪要\n", encoding="utf-8")
    unconfined = root / "unconfined.toml"
    unconfined.write_text('[scan]\nworker_user = ""\n')

    def baomi(*conf: str) -> float:
        t = time.perf_counter()
        subprocess.run([str(REPO / ".venv/bin/baomi-agent"), "scan", "--json", "--jobs", "1", "--no-progress", *conf,
                        str(files)], stdout=subprocess.DEVNULL)
        return (time.perf_counter() - t) / n * 1000
    confined_ms = statistics.median(baomi() for _ in range(3))
    root_ms = statistics.median(baomi("--config", str(unconfined)) for _ in range(3))
    t = time.perf_counter()
    subprocess.run(["rg", "-c", "-e", PATTERN, str(files)], stdout=subprocess.DEVNULL)
    rg = (time.perf_counter() - t) / n * 1000
    return confined_ms, root_ms, rg


def make_images(root: Path, n: int) -> int:
    """n images: scanned pages (150/300 dpi, rotated, noisy, PNG/JPEG) and photos; half
    of the pages carry a marking on their first line. Returns how many are marked."""
    from tests.support import scans
    root.mkdir(parents=True, exist_ok=True)
    marks = ["机密★1年", "绝密★启用前", "秘密★6个月"]
    body = ["关于做好年终工作的通知", "各部门：", "根据上级要求，现将有关事项通知如下。", "一、认真做好年终总结工作。"]
    marked = 0
    for i in range(n):
        if i % 4 == 3:  # a photo without text
            scans.photo(1600, 1200, seed=i).save(root / f"m{i}.photo.jpg", quality=85)
            continue
        mark = i % 2 == 0
        dpi = 300 if i % 3 else 150
        img = scans.page(([marks[i % 3]] if mark else ["会议纪要"]) + body, dpi=dpi,
                         rotate=(i % 5 - 2) * 0.3, noise=0.001 * (i % 3), seed=i)
        name = f"{'k' if mark else 'u'}{i}.{dpi}dpi"
        if i % 2:
            img.save(root / f"{name}.png")
        else:
            img.convert("RGB").save(root / f"{name}.jpg", quality=85)
        marked += mark
    return marked


def run_images(root: Path, jobs: int) -> None:
    """baomi's OCR against the Tesseract command line on the same images."""
    import json
    from concurrent.futures import ThreadPoolExecutor
    files = sorted(root.iterdir())
    expected = {f.name for f in files if f.name.startswith("k")}
    t = time.perf_counter()
    out = subprocess.run([str(REPO / ".venv/bin/baomi-agent"), "scan", "--json", "--jobs", str(jobs), "--no-progress",
                          str(root)], capture_output=True, text=True).stdout
    b_time = time.perf_counter() - t
    rows = [json.loads(line) for line in out.splitlines()]
    b_found = {Path(r["path"]).name for r in rows if r["level"] != "public"}
    b_unread = sum(1 for r in rows if not r["inspectable"])
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}

    def cli(f: Path) -> bool:
        r = subprocess.run(f"tesseract {f} stdout -l chi_sim+eng 2>/dev/null | tr -d ' ' | grep -qE '{OCR_PATTERN}'",
                           shell=True, env=env)
        return r.returncode == 0
    t = time.perf_counter()
    with ThreadPoolExecutor(jobs) as pool:
        hits = dict(zip((f.name for f in files), pool.map(cli, files)))
    c_time = time.perf_counter() - t
    c_found = {name for name, hit in hits.items() if hit}
    print(f"images: {len(files)} ({len(expected)} marked, {sum(1 for f in files if 'photo' in f.name)} photos); jobs {jobs}")
    print(f"{'':24}{'pages/s':>10}{'seconds':>10}{'found':>8}{'false+':>8}")
    print(f"{'baomi scan (OCR)':24}{len(files) / b_time:>10.2f}{b_time:>10.1f}{len(b_found & expected):>8}"
          f"{len(b_found - expected):>8}   not inspectable: {b_unread}")
    print(f"{'tesseract CLI | grep':24}{len(files) / c_time:>10.2f}{c_time:>10.1f}{len(c_found & expected):>8}"
          f"{len(c_found - expected):>8}")


def verdict_latency(root: Path, runs: int) -> tuple[float, float]:
    """p50/p99 seconds from a closed marked 300 dpi scan to its verdict, on a warm worker."""
    from tests.support import scans
    from baomi.agent.config import AgentConfig
    from baomi.agent.scan.engine import Scanner
    f = root / "latency.png"
    scans.page(["机密★1年", "关于做好年终工作的通知", "各部门："], dpi=300).save(f)
    cfg = AgentConfig()
    cfg.scan.rule_dirs = []
    times = []
    with Scanner(cfg, jobs=1) as s:
        s.scan_file(f)  # the worker starts: not part of a verdict's latency
        for _ in range(runs):
            t = time.perf_counter()
            v = s.scan_file(f)
            times.append(time.perf_counter() - t)
            assert v.level.id == "secret", v
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=600)
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--dir", type=Path, help="keep the corpus here (generated once, reused)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each side; the median is printed")
    ap.add_argument("--images", type=int, default=200, help="scanned pages and photos for the OCR figures (0: none)")
    ap.add_argument("--quick", action="store_true", help="150 files, 40 MB, one run, 20 images, 10 latency runs")
    a = ap.parse_args()
    if a.quick:
        a.files, a.mb, a.repeat, a.images = 150, 40, 1, 20
    sys.stdout.reconfigure(line_buffering=True)  # figures appear as they are measured, also into a file
    for tool in ("rg", "pdftotext", "unzip", "grep", "tar") + (("tesseract",) if a.images else ()):
        if not shutil.which(tool):
            print(f"bench/scan.py: {tool} is missing (scripts/setup installs it)", file=sys.stderr)
            return 2
    tmp = Path(a.dir or tempfile.mkdtemp(prefix="baomi-bench-scan-"))
    corpus = tmp / "corpus"
    if not corpus.exists():
        print(f"generating {a.files} files (~{a.mb} MB) in {corpus} ...", flush=True)
        make_corpus(corpus, a.files, a.mb)
    files = list(corpus.iterdir())
    size = sum(f.stat().st_size for f in files) / 1e6
    print(f"corpus: {len(files)} files, {size:.0f} MB; jobs {a.jobs}; {os.cpu_count()} CPUs")
    marked_expected = sum(1 for f in files if int(f.name[1:].split(".")[0]) % 7 == 0)
    run_toolbox(corpus, a.jobs)  # warm the page cache for both
    b_runs, t_runs, b_rss, b_marked = [], [], 0, 0
    for _ in range(a.repeat):  # interleaved, so a busy moment of the machine hits both
        b_time, rss, b_marked = run_baomi(corpus, a.jobs)
        b_runs.append(b_time)
        b_rss = max(b_rss, rss)
        t_runs.append(run_toolbox(corpus, a.jobs))
    b_time, t_time = statistics.median(b_runs), statistics.median(t_runs)
    print(f"median of {a.repeat} runs each")
    print(f"{'':24}{'files/s':>10}{'MB/s':>10}{'seconds':>10}")
    print(f"{'baomi scan':24}{len(files) / b_time:>10.1f}{size / b_time:>10.1f}{b_time:>10.2f}   peak RSS {b_rss / 1e6:.0f} MB"
          f" (sum over the scanner and its workers), {b_marked} files at secret (of {marked_expected} marked)")
    print(f"{'toolbox (rg/unzip/pdftotext)':24}{len(files) / t_time:>10.1f}{size / t_time:>10.1f}{t_time:>10.2f}")
    print(f"baomi / toolbox speed: {t_time / b_time:.2f}x (runs: baomi {', '.join(f'{x:.2f}' for x in b_runs)} s; "
          f"toolbox {', '.join(f'{x:.2f}' for x in t_runs)} s)")
    by_kind(corpus, tmp / "by-kind", a.jobs)
    ms, root_ms, rg_ms = small_files(tmp / "small")
    print(f"small text files (2000, median of 3): baomi {ms:.2f} ms/file (incl. start-up; workers "
          f"{'confined' if os.geteuid() == 0 else 'as the caller'}), with workers keeping root {root_ms:.2f} ms/file, "
          f"rg {rg_ms:.3f} ms/file")
    if a.images:
        images = tmp / "images"
        if not images.exists():
            print(f"drawing {a.images} scanned pages and photos in {images} ...", flush=True)
            make_images(images, a.images)
        run_images(images, a.jobs)
        p50, p99 = verdict_latency(tmp, 10 if a.quick else 30)
        print(f"marked 300 dpi scan, close -> verdict (warm worker): p50 {p50:.2f} s, p99 {p99:.2f} s")
    if not a.dir:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
