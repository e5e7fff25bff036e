#!/usr/bin/env python3
"""What baomi adds to a print job: the time from `lp` to the job being at the printer
(cupsd logs it completed, its bytes in the device file) for a 1-page and a 100-page
PDF, on a private cupsd with two queues of the same driver (CUPS's generic PDF
printer, writing to a file): one plain, one through baomi's backend with the agent's
print component running in this process. Public documents go through unchanged;
internal ones are also watermarked. Jobs alternate between the queues in the same run.

    sudo .venv/bin/python bench/print.py [--runs 10]

Prints median and 90th percentile (ms) side by side. Never part of the test verdict.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.print.conftest import PrintRig  # noqa: E402
from tests.support import docs  # noqa: E402
from tests.support.cups import PDF_PPD  # noqa: E402


def at_printer(rig: PrintRig, queue: str, path: Path, out: Path) -> float:
    """Seconds from submitting to the job completed with its bytes in the device file."""
    out.unlink(missing_ok=True)
    t0 = time.monotonic()
    job = rig.cups.lp(queue, path)
    marker = f"[Job {job}] Job completed."
    log = rig.cups.error_log
    seen = 0
    while True:
        with open(log, "rb") as f:  # only what was added since the last look
            f.seek(seen)
            chunk = f.read()
        if marker.encode() in chunk:
            break
        seen += max(0, chunk.rfind(b"\n") + 1)
        if b"Job canceled" in chunk and f"[Job {job}]".encode() in chunk:
            raise RuntimeError(rig.cups.log_of(job))
        time.sleep(0.002)
    elapsed = time.monotonic() - t0
    if not out.exists() or out.stat().st_size == 0:
        raise RuntimeError(f"job {job}: nothing at the printer\n{rig.cups.log_of(job)}")
    return elapsed


def _ms(values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
    return f"{statistics.median(values) * 1000:7.1f} / {p90 * 1000:7.1f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="baomi-bench-print-"))
    rig = PrintRig(tmp / "rig", extra="wrap_new_queues = false")
    try:
        guarded_out = rig.queue("guarded", PDF_PPD)
        rig.install()
        plain_out = rig.queue("plain", PDF_PPD)  # added after install: stays outside baomi
        rig.start_agent()
        kinds = [(pages, level, mark) for pages in (1, 100) for level, mark in (("public", "会议纪要"),
                                                                                   ("internal", "内部"))]

        def document(pages: int, level: str, mark: str, run: int) -> Path:
            # new content every run: the agent's verdict cache must not spare it the scan
            body = [[mark if i == 0 else f"第{i + 1}页", f"第{run}次 " + "正文 " * 40] for i in range(pages)]
            path = tmp / f"{level}-{pages}-{run}.pdf"
            path.write_bytes(docs.pdf(body))
            return path

        for pages, level, mark in kinds:  # warm up: the scanner's workers, both queues' filters
            at_printer(rig, "plain", document(pages, level, mark, -1), plain_out)
            at_printer(rig, "guarded", document(pages, level, mark, -1), guarded_out)
        results: dict[tuple[str, int, str], list[float]] = {}
        for run in range(args.runs):
            for pages, level, mark in kinds:
                path = document(pages, level, mark, run)
                for queue, out in (("plain", plain_out), ("guarded", guarded_out)):
                    results.setdefault((queue, pages, level), []).append(at_printer(rig, queue, path, out))
        print(f"submit -> at printer, median / p90 ms, {args.runs} runs each (CUPS generic PDF driver, file device)")
        print(f"{'document':<34} {'without baomi':>17} {'with baomi':>17} {'added (median)':>16}")
        for pages, level, _ in kinds:
            plain, guarded = results[("plain", pages, level)], results[("guarded", pages, level)]
            added = (statistics.median(guarded) - statistics.median(plain)) * 1000
            note = ", watermarked" if level == "internal" else ""
            print(f"{f'{pages} page(s) {level}{note}':<34.34} {_ms(plain):>17} {_ms(guarded):>17} {added:11.1f} ms")
    finally:
        rig.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
