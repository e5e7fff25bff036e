"""Discovery under the daemon: on an unclassified host the scheduled pass records into the real
spool; on a classified host nothing runs. The schedule itself is a pure function."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from baomi.agent import config
from baomi.agent.context import open_context
from baomi.agent.decide.discovery import next_pass_in
from baomi.agent.discovery.component import DiscoveryComponent

pytestmark = pytest.mark.timeout(120)


def _config(tmp: Path, host_class: str) -> Path:
    (tmp / "home/li").mkdir(parents=True)
    (tmp / "home/li/方案.txt").write_text("机密★2年\n技术方案\n", encoding="utf-8")
    path = tmp / "agent.toml"
    path.write_text(f'[host]\nclass = "{host_class}"\n[paths]\nstate_dir = "state"\n'
                    f'[discovery]\npaths = ["home"]\nstart_delay_s = 0\ncpu_share = 1.0\n')
    return path


def test_the_scheduled_pass_records_into_the_spool_and_keeps_its_schedule(tmp_path: Path) -> None:
    ctx = open_context(config.load(_config(tmp_path, "unclassified")))
    comp = DiscoveryComponent(ctx)
    try:
        comp.start()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not list(ctx.spool.iter_events(kind="discovery.finished")):
            time.sleep(0.2)
        comp.stop()
        found = list(ctx.spool.iter_events(kind="file.found_at_rest"))
        assert [e["details"]["path"] for e in found] == [str(tmp_path / "home/li/方案.txt")]
        assert found[0]["severity"] == "high" and found[0]["file"]["level"] == "secret"
        done = list(ctx.spool.iter_events(kind="discovery.finished"))
        assert len(done) == 1 and done[0]["details"]["found"] == 1  # the next pass is a day away
        assert ctx.status["discovery"]["last_pass"] == 1
    finally:
        comp.stop()
        ctx.spool.close()


def test_nothing_runs_on_a_classified_host(tmp_path: Path) -> None:
    ctx = open_context(config.load(_config(tmp_path, "classified")))
    try:
        comp = DiscoveryComponent(ctx)
        comp.start()
        assert comp._thread is None
        comp.stop()
        assert list(ctx.spool.iter_events()) == [] and not (tmp_path / "state/discovery.db").exists()
    finally:
        ctx.spool.close()


@pytest.mark.parametrize("last,now,expected", [
    (None, 1000.0, 600.0),          # never ran: after the start delay
    (1000.0, 1100.0, 86300.0),      # ran 100 s ago: the rest of the interval
    (1000.0, 200000.0, 600.0),      # overdue after a long downtime: still after the start delay
])
def test_the_schedule(last: float | None, now: float, expected: float) -> None:
    assert next_pass_in(last, now, 86400.0, 600.0) == expected
    assert next_pass_in(last, now, 86400.0, 0.0) == (0.0 if expected == 600.0 else expected)
