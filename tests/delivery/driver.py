"""A real agent process for the delivery tests: the agent context, its uploader
component, and events recorded in a loop (no media needed).

    python -m tests.delivery.driver CONFIG [--count N] [--rate R] [--drain]

--count 0 records until killed; --drain exits once the collector has acknowledged everything.
"""
from __future__ import annotations

import argparse
import sys
import time

from baomi.agent.config import load
from baomi.agent.context import open_context
from baomi.agent.uploader import UploaderComponent

PAD = "p" * 300


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--rate", type=float, default=0.0, help="events per second (0: as fast as possible)")
    ap.add_argument("--drain", action="store_true")
    ap.add_argument("--mix", action="store_true", help="mostly routine telemetry, every 7th a security event")
    args = ap.parse_args()
    ctx = open_context(load(args.config))
    comp = UploaderComponent(ctx)
    comp.start()
    i = 0
    while args.count == 0 or i < args.count:
        i += 1
        if args.mix and i % 7:
            ctx.record("file.copied", action="audit", file={"name": f"公开-{i}.txt"}, details={"i": i, "pad": PAD})
        else:
            ctx.record("file.blocked", severity="high", action="block", file={"name": f"机密-{i}.docx"},
                       details={"i": i})
        if args.rate:
            time.sleep(1.0 / args.rate)
    print(f"recorded {i}", flush=True)
    if args.drain:
        while ctx.spool.depth():
            time.sleep(0.1)
        print("drained", flush=True)
        comp.stop()
        ctx.spool.close()
        return 0
    while True:
        time.sleep(1)


if __name__ == "__main__":
    sys.exit(main())
