"""The posture component alone, as the daemon starts it, with a real spool, in a process of
its own (tests run it inside a network namespace with `ip netns exec`).

    python -m tests.posture.runner AGENT_TOML

Prints READY once started; SIGTERM stops it.
"""
from __future__ import annotations

import signal
import sys
import threading

from baomi.agent import config, daemon
from baomi.agent.context import open_context

SPEC = "baomi.agent.posture.component:PostureComponent"


def main() -> None:
    ctx = open_context(config.load(sys.argv[1]))
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    comps = daemon.start_components(ctx, [SPEC])
    print("READY" if comps else "FAILED", flush=True)
    done.wait()
    for c in comps:
        c.stop()
    ctx.spool.close()


if __name__ == "__main__":
    main()
