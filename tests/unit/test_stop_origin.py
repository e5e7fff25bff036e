"""agent.stopped says who stopped the agent: a real process waits for the stop signal the
way `baomi-agent run` does, another real process sends it, and /proc names the sender."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from baomi.agent import stop_origin

pytestmark = pytest.mark.timeout(60)
REPO = Path(__file__).resolve().parents[2]

# blocks the stop signals, says it is ready, waits, prints describe() of what came
WAITER = """
import json, sys, threading
from baomi.agent import stop_origin
stop_origin.block_stop_signals()
print("ready", flush=True)
info = stop_origin.wait_for_stop(threading.Event(), tick=0.2)
print(json.dumps(stop_origin.describe(info)), flush=True)
"""
# sends SIGTERM, then stays alive (as a `systemctl stop` client waits for its job)
SENDER = "import os, signal, sys, time; os.kill(int(sys.argv[1]), signal.SIGTERM); time.sleep(60)"


def _start_waiter() -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-c", WAITER], stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert p.stdout.readline().strip() == "ready"
    return p


def test_a_stop_signal_names_its_sender_and_the_sudo_user() -> None:
    waiter = _start_waiter()
    sender = subprocess.Popen([sys.executable, "-c", SENDER, str(waiter.pid)],
                              env=dict(os.environ, SUDO_USER="zhangwei"))
    try:
        out, _ = waiter.communicate(timeout=30)
    finally:
        sender.kill()
        sender.wait()
    stopped = json.loads(out)
    assert stopped["how"] == "signal" and stopped["signal"] == "SIGTERM"
    assert stopped["sender_pid"] == sender.pid and stopped["sender_uid"] == os.getuid()
    assert stopped["sender"]["sudo_user"] == "zhangwei" and stopped["by"] == "zhangwei"
    assert "os.kill" in stopped["sender"]["cmdline"]


def test_a_running_systemctl_stop_client_is_found_with_its_sudo_user() -> None:
    # a real process whose argv reads `systemctl stop baomi-agent.service` (exec -a)
    client = subprocess.Popen(["bash", "-c", f'exec -a systemctl {sys.executable} -c "import time; time.sleep(60)" '
                               "stop baomi-agent.service"], env=dict(os.environ, SUDO_USER="lisi"))
    try:
        end = time.monotonic() + 20
        found: list = []
        while not found and time.monotonic() < end and client.poll() is None:  # until exec has happened
            found = [r for r in stop_origin.systemctl_requests() if r["pid"] == client.pid]
            time.sleep(0.05)
        assert found, "the systemctl client was not found in /proc"
        assert found[0]["sudo_user"] == "lisi" and found[0]["cmdline"].startswith("systemctl ")
    finally:
        client.kill()
        client.wait()


def test_a_stop_from_inside_or_an_unrelated_systemctl_is_not_blamed_on_anyone() -> None:
    assert stop_origin.describe(None) == {"how": "requested"}
    assert not stop_origin._asks_to_stop(["systemctl", "stop", "cups.service"])
    assert not stop_origin._asks_to_stop(["systemctl", "status", "baomi-agent"])
    assert stop_origin._asks_to_stop(["/usr/bin/systemctl", "restart", "baomi-agent"])
