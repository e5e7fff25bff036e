#!/usr/bin/env python3
"""From a default route appearing to `host.external_connection` being recorded: the posture
component (real spool) runs in a network namespace whose "outside" neighbour answers the probe;
the bench adds the route, reads the event's time from the spool, removes the route, waits for
`host.external_connection_ended`, and repeats. The probe schedule is set to an hour, so every
detection comes from netlink. With --load, N busy processes compete for the CPU meanwhile.

    sudo .venv/bin/python bench/posture.py [--rounds 10] [--load 0 2]

Prints min / median / worst latency (ms) per load. Target: under 5 s. Never part of the verdict.
"""
from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.posture.conftest import Agent, events, write_config  # noqa: E402
from tests.support.netns import lab, wait_for  # noqa: E402


def _burn() -> None:
    while True:
        pass


def _time(event: dict) -> float:
    return dt.datetime.fromisoformat(event["time"].replace("Z", "+00:00")).timestamp()


def rounds(n: int) -> list[float]:
    out = []
    with lab() as the, tempfile.TemporaryDirectory() as tmp:
        config = write_config(Path(tmp), probe_interval_s=3600.0)
        log = Path(tmp) / "agent.log"
        agent = Agent(the, config, log)
        try:
            for i in range(n):
                t0 = time.time()
                the.add_default_route()
                got = wait_for(lambda: events(config, "host.external_connection")[i:], 30, 0.02)
                if not got:
                    raise SystemExit(f"round {i}: no host.external_connection within 30 s\n{log.read_text()[-3000:]}")
                out.append(_time(got[0]) - t0)
                the.del_default_route()
                if not wait_for(lambda: events(config, "host.external_connection_ended")[i:], 30, 0.02):
                    raise SystemExit(f"round {i}: the connection never ended\n{log.read_text()[-3000:]}\n"
                                     f"{[(e['kind'], e['details']) for e in events(config)]}")
        finally:
            agent.stop()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--load", type=int, nargs="+", default=[0, 2], help="busy processes alongside")
    args = ap.parse_args()
    print(f"{'load':>5} {'rounds':>6} {'min ms':>8} {'median ms':>10} {'worst ms':>9}")
    for load in args.load:
        burners = [multiprocessing.Process(target=_burn, daemon=True) for _ in range(load)]
        for b in burners:
            b.start()
        try:
            lat = [x * 1000 for x in rounds(args.rounds)]
        finally:
            for b in burners:
                b.terminate()
                b.join()
        print(f"{load:>5} {len(lat):>6} {min(lat):>8.0f} {statistics.median(lat):>10.0f} {max(lat):>9.0f}")


if __name__ == "__main__":
    main()
