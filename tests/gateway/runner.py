"""A gateway in a process of its own, so a test can SIGKILL it.

    python -m tests.gateway.runner ROOTS KEY MOUNTPOINT attach|recover [CAP]

Prints every event as one JSON line ({"event": name, ...fields}), then the recovery
result ({"recovery": ...}) in recover mode, then READY. SIGTERM stops it cleanly.
"""
from __future__ import annotations

import json
import signal
import sys
import threading
from dataclasses import asdict
from pathlib import Path

from baomi.agent.gateway.gateway import Gateway

from .support import judge

_out = threading.Lock()


def say(obj: dict) -> None:
    with _out:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def main() -> None:
    roots, key, mp, mode = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), sys.argv[4]
    cap = int(sys.argv[5]) if len(sys.argv) > 5 else 1 << 30
    gw = Gateway(roots / "staging", cap, judge, lambda n, f: say({"event": n, **f}),
                 real_root=roots / "real", view_root=roots / "view")
    gw.start()
    if mode == "attach":
        gw.attach(key, mp)
    else:
        say({"recovery": asdict(gw.recover())})
    say({"ready": True})
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    done.wait()
    gw.stop()
    say({"stopped": True})


if __name__ == "__main__":
    main()
