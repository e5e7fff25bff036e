"""A real `baomi-agent run` stopped by a SIGTERM from a process that sudo started leaves
`agent.stopped` naming that user, and the event reaches the collector when the agent
runs again."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.delivery.conftest import REPO, agent_config
from tests.delivery.test_faults import local_events, wait_for
from tests.support.collector import Collector

pytestmark = pytest.mark.timeout(240)
AGENT = [str(REPO / ".venv/bin/baomi-agent"), "run", "--config"]
# the `sudo kill` stand-in: sends SIGTERM, then lingers as a `systemctl stop` client would
SENDER = "import os, signal, sys, time; os.kill(int(sys.argv[1]), signal.SIGTERM); time.sleep(60)"


def _start(cfg: Path, log: Path) -> subprocess.Popen:
    with open(log, "ab") as logf:
        return subprocess.Popen([*AGENT, str(cfg)], stdout=logf, stderr=subprocess.STDOUT, cwd=REPO,
                                start_new_session=True)


def _kinds(cfg: Path) -> list[str]:
    try:
        return [e["kind"] for e in local_events(cfg)]
    except Exception:  # the spool is not there yet
        return []


def test_agent_stopped_names_who_sent_the_stop_signal(tmp_path: Path) -> None:
    with Collector(tmp_path / "c") as collector:
        cfg = agent_config(tmp_path / "agent", collector.url, collector.token())
        log = tmp_path / "agent.log"
        agent = _start(cfg, log)
        try:
            wait_for(lambda: "agent.started" in _kinds(cfg), 60, "agent.started in the spool")
            sender = subprocess.Popen([sys.executable, "-c", SENDER, str(agent.pid)],
                                      env=dict(os.environ, SUDO_USER="wangwu"))
            try:
                assert agent.wait(60) == 0, log.read_text()[-2000:]
            finally:
                sender.kill()
                sender.wait()
        finally:
            if agent.poll() is None:
                agent.kill()
                agent.wait()
        stopped = [e for e in local_events(cfg) if e["kind"] == "agent.stopped"][-1]
        assert stopped["severity"] == "medium"
        details = stopped["details"]
        assert details["how"] == "signal" and details["signal"] == "SIGTERM" and details["by"] == "wangwu"
        assert details["sender_pid"] == sender.pid and details["sender"]["sudo_user"] == "wangwu"

        again = _start(cfg, log)  # delivered when the agent runs again
        try:
            wait_for(lambda: collector.stored(kind="agent.stopped"), 60, "agent.stopped at the collector")
            assert collector.stored(kind="agent.stopped")[0]["details"]["by"] == "wangwu"
        finally:
            again.terminate()
            again.wait(60)
