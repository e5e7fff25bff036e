#!/usr/bin/env python3
"""How quickly an idle session gets locked: from its idle time crossing the limit to
LockedHint being seen true, with N sessions crossing together, against
python-dbusmock's logind on a private system bus. The peer figure, measured in the
same run on the same bus, is a bare loop in this script that polls logind at the same
interval and calls LockSession the moment a session is past the limit: the part of
the delay that polling logind itself costs.

    .venv/bin/python bench/screenlock.py [--sessions 1 10 50] [--poll 0.5] [--limit 2]

Prints min / median / worst latency (ms) per session count. Never part of the test verdict.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from baomi.agent.config import load  # noqa: E402
from baomi.agent.context import open_context  # noqa: E402
from baomi.agent.decide.screenlock import logind_idle_s  # noqa: E402
from baomi.agent.screenlock.enforcer import Enforcer  # noqa: E402
from baomi.agent.screenlock.logind import Logind  # noqa: E402


def start_logind():
    import os

    from tests.screenlock import conftest as c
    pid, address = c.start_private_bus()
    os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = address
    proc = c.spawn_mock(["--template", "logind"], {"DBUS_SYSTEM_BUS_ADDRESS": address})
    bus = c.dbus.bus.BusConnection(address)
    while not bus.name_has_owner(c.LOGIND):
        time.sleep(0.05)
    mock = c.MockLogind(address, proc, bus.get_object(c.LOGIND, "/org/freedesktop/login1"))
    mock.set_lock_behaviour(True)

    def stop() -> None:
        proc.terminate()
        proc.wait(timeout=5)
        os.kill(pid, 15)
    return mock, stop


def agent_run(n: int, poll: float, limit: int, tag: str) -> list[float]:
    mock, stop = start_logind()
    try:
        for i in range(n):
            mock.add_session(f"{tag}{i}", 1000 + i, f"user{i}", idle_s=limit - 1.0)
        with tempfile.TemporaryDirectory() as tmp:
            from tests.screenlock.conftest import write_config
            ctx = open_context(load(write_config(Path(tmp), idle_limit_s=limit, poll_s=poll, verify_s=10.0)))
            enf = Enforcer(ctx)
            enf.start()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                got = list(ctx.spool.iter_events(kind="screenlock.enforced"))
                if len(got) >= n:
                    break
                time.sleep(0.1)
            enf.stop()
            ctx.spool.close()
            return [e["details"]["latency_s"] for e in got]
    finally:
        stop()


def peer_run(n: int, poll: float, limit: int, tag: str) -> list[float]:
    """The bare loop: poll, LockSession past the limit, stop timing when LockedHint is true."""
    mock, stop = start_logind()
    try:
        for i in range(n):
            mock.add_session(f"{tag}{i}", 1000 + i, f"user{i}", idle_s=limit - 1.0)
        lg = Logind().connect()
        crossed: dict[str, float] = {}
        done: dict[str, float] = {}
        deadline = time.monotonic() + 60
        while len(done) < n and time.monotonic() < deadline:
            for s in lg.list_sessions():
                now = time.monotonic()
                idle = logind_idle_s(s.idle_hint, s.idle_since_mono_us, s.idle_since_us, now, time.time()) or 0
                if s.id in done or idle < limit:
                    continue
                crossed.setdefault(s.id, now - (idle - limit))
                if s.locked_hint:
                    done[s.id] = now - crossed[s.id]
                else:
                    lg.lock_session(s.id)
            time.sleep(0.2 if crossed and len(done) < len(crossed) else poll)
        lg.close()
        return list(done.values())
    finally:
        stop()


def fmt(values: list[float]) -> str:
    if not values:
        return "no locks"
    ms = [v * 1000 for v in values]
    return f"min {min(ms):7.0f}  median {statistics.median(ms):7.0f}  worst {max(ms):7.0f} ms  ({len(ms)} locks)"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, nargs="+", default=[1, 10, 50])
    ap.add_argument("--poll", type=float, default=0.5)
    ap.add_argument("--limit", type=int, default=2)
    args = ap.parse_args()
    print(f"idle limit {args.limit}s, poll {args.poll}s; latency = limit crossed → LockedHint true")
    for n in args.sessions:
        a = agent_run(n, args.poll, args.limit, "a")
        p = peer_run(n, args.poll, args.limit, "p")
        print(f"{n:4d} sessions  agent: {fmt(a)}")
        print(f"{'':4s}           peer:  {fmt(p)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
