"""Scanner throughput against the Unix toolbox a user would otherwise script.

Generates a mixed corpus (text in several encodings, docx, xlsx, pptx, PDF,
OFD, zip and tar.gz archives, with and without markings), then in the same run:
  baomi:   baomi-agent scan --json (all worker processes)
  toolbox: rg on plain text, `unzip -p FILE | grep -E` on OOXML/OFD/zip,
           `pdftotext FILE - | grep -E` on PDFs, `tar -xzOf | grep -E` on tarballs
and prints files/s, MB/s, peak RSS (baomi and its workers), and the cost per
small text file (2,000 files).

    .venv/bin/python bench/scan.py [--files 600] [--mb 200] [--jobs N] [--dir D]
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
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

PATTERN = "(绝密|机密|秘密)[★☆*＊]|TOP SECRET|SECRET//"
PROSE = ("本单位各部门应当按照年度工作计划，认真做好数据安全与信息化建设相关工作，加强组织领导，落实工作责任，"
         "确保各项任务按期完成。会议强调，要坚持统筹发展和安全，持续提升治理能力。")


def make_corpus(root: Path, files: int, mb: int) -> None:
    rnd = random.Random(7)
    root.mkdir(parents=True, exist_ok=True)
    big_every = max(1, files * 2 // max(1, mb))  # every big_every-th file is ~2 MB of text: they carry the volume
    for i in range(files):
        marked = i % 7 == 0
        head = ["机密★5年"] if marked else ["关于工作的通知"]
        n_para = 8000 if i % big_every == 0 else rnd.randint(20, 200)
        paras = head + [PROSE] * n_para
        kind = i % 8
        if kind == 0:
            (root / f"t{i}.txt").write_bytes("\n".join(paras).encode("gb18030"))
        elif kind == 1:
            (root / f"t{i}.txt").write_bytes("\n".join(paras).encode("utf-8"))
        elif kind == 2:
            (root / f"d{i}.docx").write_bytes(docs.docx(paras[:1 + n_para // 4]))
        elif kind == 3:
            (root / f"x{i}.xlsx").write_bytes(docs.xlsx({"S": [[p] for p in paras[:200]]}))
        elif kind == 4:
            (root / f"p{i}.pptx").write_bytes(docs.pptx([paras[:10], paras[10:30]]))
        elif kind == 5:
            (root / f"f{i}.pdf").write_bytes(docs.pdf([paras[j:j + 40] for j in range(0, min(len(paras), 400), 40)]))
        elif kind == 6:
            (root / f"o{i}.ofd").write_bytes(docs.ofd([paras[:30]]))
        else:
            (root / f"a{i}.tar.gz" if i % 2 else root / f"a{i}.zip").write_bytes(
                (docs.tar_gz if i % 2 else docs.zip_of)({"in/a.txt": "\n".join(paras).encode(), "in/b.docx": docs.docx(paras[:50])}))


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
            subprocess.run(["rg", "-q", "-e", PATTERN, "-E", "gb18030" if "t" in name and int(name[1:-4]) % 8 == 0 else "utf-8", str(f)])
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


def small_files(root: Path, n: int = 2000) -> tuple[float, float]:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (root / f"s{i}.txt").write_text(("机密★1年\n" if i % 10 == 0 else "") + f"第{i}号 会议纪要\n", encoding="utf-8")
    t = time.perf_counter()
    subprocess.run([str(REPO / ".venv/bin/baomi-agent"), "scan", "--json", "--jobs", "1", "--no-progress", str(root)],
                   stdout=subprocess.DEVNULL)
    baomi = (time.perf_counter() - t) / n * 1000
    t = time.perf_counter()
    subprocess.run(["rg", "-c", "-e", PATTERN, str(root)], stdout=subprocess.DEVNULL)
    rg = (time.perf_counter() - t) / n * 1000
    return baomi, rg


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=600)
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--dir", type=Path)
    a = ap.parse_args()
    for tool in ("rg", "pdftotext", "unzip", "grep", "tar"):
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
    run_toolbox(corpus, a.jobs)  # warm the page cache for both
    b_time, b_rss, b_marked = run_baomi(corpus, a.jobs)
    t_time = run_toolbox(corpus, a.jobs)
    print(f"{'':24}{'files/s':>10}{'MB/s':>10}{'seconds':>10}")
    print(f"{'baomi scan':24}{len(files) / b_time:>10.1f}{size / b_time:>10.1f}{b_time:>10.2f}   peak RSS {b_rss / 1e6:.0f} MB"
          f" (with workers), {b_marked} files at secret")
    print(f"{'toolbox (rg/unzip/pdftotext)':24}{len(files) / t_time:>10.1f}{size / t_time:>10.1f}{t_time:>10.2f}")
    print(f"baomi / toolbox speed: {t_time / b_time:.2f}x")
    ms, rg_ms = small_files(tmp / "small")
    print(f"small text files (2000): baomi {ms:.2f} ms/file (incl. start-up), rg {rg_ms:.3f} ms/file")
    if not a.dir:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
