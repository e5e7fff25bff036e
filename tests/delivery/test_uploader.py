"""The uploader's answers to each collector response, and enrollment errors.

Status handling runs against a real collector where one can be provoked
(401, 409, 413, 422, TLS); Retry-After and the backoff curve are checked on
the pure logic with constructed responses."""
from __future__ import annotations

import json
import random
import ssl
import subprocess
from pathlib import Path

import httpx
import pytest

from baomi.agent import config as agent_config_mod
from baomi.agent.context import open_context
from baomi.agent.enroll import EnrollError, enroll, is_enrolled
from baomi.agent.uploader import BATCH_KEY, Backoff, Uploader
from tests.delivery.conftest import REPO, agent_config
from tests.support.collector import Collector

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def sqlite_collector(tmp_path: Path):
    c = Collector(tmp_path / "collector", extra="max_batch_bytes = 40000")
    try:
        yield c.start()
    finally:
        c.kill()


def context(tmp_path: Path, url: str, token: str | None):
    cfg = agent_config_mod.load(agent_config(tmp_path / "agent", url, token))
    return open_context(cfg)


def uploader(ctx) -> Uploader:
    return Uploader(ctx.config.collector, ctx.identity, ctx.spool, ctx.host, ctx.record)


def drain(up: Uploader, rounds: int = 50) -> None:
    for _ in range(rounds):
        out = up.send_once()
        if out.status == "idle":
            return
        assert out.status == "sent", out.reason
    raise AssertionError("did not drain")


def test_backoff_grows_with_jitter_and_honours_retry_after() -> None:
    b = Backoff(1.0, 8.0, random.Random(1))
    delays = [b.next() for _ in range(6)]
    for i, d in enumerate(delays):
        cap = min(8.0, 2 ** i)
        assert cap / 2 <= d <= cap
    assert b.next(at_least=30.0) == 30.0
    b.reset()
    assert b.next() <= 1.0


def test_503_retry_after_is_a_retry_with_that_delay(tmp_path: Path) -> None:
    ctx = context(tmp_path, "http://127.0.0.1:9", None)
    up = uploader(ctx)
    ctx.record("file.blocked", severity="high")
    resp = httpx.Response(503, headers={"Retry-After": "7"}, json={"error": "database unavailable"})
    out = up.handle(resp, ctx.spool.unacked())
    assert (out.status, out.delay) == ("retry", 7.0)
    assert ctx.spool.depth() == 1  # nothing acknowledged


def test_unreachable_collector_is_a_retry_naming_it(tmp_path: Path) -> None:
    ctx = context(tmp_path, "http://127.0.0.1:9", None)
    ctx.record("file.blocked", severity="high")
    out = uploader(ctx).send_once()
    assert out.status == "retry" and "unreachable" in out.reason and "127.0.0.1:9" in out.reason
    assert ctx.spool.depth() == 1


def test_enroll_then_deliver_and_ack(sqlite_collector: Collector, tmp_path: Path) -> None:
    ctx = context(tmp_path, sqlite_collector.url, sqlite_collector.token())
    enroll(ctx.config.collector, ctx.identity, ctx.spool, ctx.host)
    assert is_enrolled(ctx.spool, sqlite_collector.url)
    for i in range(120):
        ctx.record("file.blocked", severity="high", details={"i": i, "pad": "z" * 400})
    up = uploader(ctx)
    drain(up)
    assert ctx.spool.depth() == 0
    # a 40 kB collector limit: the uploader's batches shrank to fit (413 → halve) or fit already
    assert len(sqlite_collector.stored(agent_id=ctx.identity.agent_id, kind="file.blocked")) == 120


def test_413_halves_the_batch(sqlite_collector: Collector, tmp_path: Path) -> None:
    ctx = context(tmp_path, sqlite_collector.url, sqlite_collector.token())
    enroll(ctx.config.collector, ctx.identity, ctx.spool, ctx.host)
    for i in range(150):
        ctx.record("file.copied", details={"pad": "q" * 1000})
    up = uploader(ctx)
    out = up.send_once()  # 200 events of 1.3 kB > 40 kB
    assert out.status == "sent" and "too large" in out.reason and up.batch_size == 100
    drain(up)
    assert ctx.spool.depth() == 0
    assert len(sqlite_collector.stored(agent_id=ctx.identity.agent_id, kind="file.copied")) == 150


def test_409_resyncs_the_batch_counter(sqlite_collector: Collector, tmp_path: Path) -> None:
    ctx = context(tmp_path, sqlite_collector.url, sqlite_collector.token())
    enroll(ctx.config.collector, ctx.identity, ctx.spool, ctx.host)
    up = uploader(ctx)
    for _ in range(3):
        ctx.record("file.blocked", severity="high")
        drain(up)
    last = int(ctx.spool.get_meta(BATCH_KEY))
    ctx.spool.set_meta(BATCH_KEY, "0")  # as if the counter were lost
    ctx.record("file.blocked", severity="high")
    out = up.send_once()
    assert out.status == "sent" and "resynchronised" in out.reason
    assert int(ctx.spool.get_meta(BATCH_KEY)) == last
    drain(up)
    assert ctx.spool.depth() == 0


def test_401_without_token_records_one_rejection(sqlite_collector: Collector, tmp_path: Path) -> None:
    ctx = context(tmp_path, sqlite_collector.url, None)
    ctx.record("file.blocked", severity="high")
    up = uploader(ctx)
    for _ in range(3):
        out = up.send_once()
        assert out.status == "retry" and "does not know this agent" in out.reason
    rejected = list(ctx.spool.iter_events(kind="agent.delivery_rejected"))
    assert len(rejected) == 1 and rejected[0]["details"]["status"] == 401
    assert ctx.spool.depth() == 2  # kept, not dropped


def test_401_with_token_enrolls_again(sqlite_collector: Collector, tmp_path: Path) -> None:
    ctx = context(tmp_path, sqlite_collector.url, sqlite_collector.token())
    ctx.record("file.blocked", severity="high")
    up = uploader(ctx)
    out = up.send_once()
    assert out.status == "sent" and "enrolled" in out.reason
    drain(up)
    assert ctx.spool.depth() == 0


def test_one_invalid_event_no_longer_blocks_delivery_for_good(sqlite_collector: Collector,
                                                              tmp_path: Path) -> None:
    """Regression: one malformed event used to be retried forever, holding back everything after it."""
    ctx = context(tmp_path, sqlite_collector.url, sqlite_collector.token())
    enroll(ctx.config.collector, ctx.identity, ctx.spool, ctx.host)
    before = ctx.record("file.copied")
    bad = ctx.record("file.blocked", severity="high")
    after = [ctx.record("file.blocked", severity="high", details={"i": i}) for i in range(3)]
    # damage the stored event so it fails the collector's schema check (its hash no longer matters)
    ctx.spool._db.execute("UPDATE events SET body=? WHERE seq=?",
                          (json.dumps(dict(bad, file={"level": [1]})), bad["seq"]))
    up = uploader(ctx)
    drain(up)
    assert ctx.spool.depth() == 0
    agent = ctx.identity.agent_id
    stored = {e["seq"] for e in sqlite_collector.stored(agent_id=agent)}
    assert {before["seq"], *(e["seq"] for e in after)} <= stored and bad["seq"] not in stored
    (rej,) = [e for e in sqlite_collector.stored(agent_id=agent) if e["kind"] == "delivery.rejected"]
    assert rej["details"]["first_seq"] == rej["details"]["last_seq"] == bad["seq"]
    assert rej["details"]["status"] == 422 and "level" in rej["details"]["error"]
    assert rej["details"]["event_id"] == bad["id"] and rej["details"]["event_kind"] == "file.blocked"
    # the hole is announced: the collector reports no chain.gap for it
    assert sqlite_collector.stored(kind="chain.gap") == []


def test_a_422_naming_no_event_is_reported_once_and_nothing_skipped(tmp_path: Path) -> None:
    ctx = context(tmp_path, "http://127.0.0.1:9", None)
    ev1 = ctx.record("file.blocked", severity="high")
    up = uploader(ctx)
    for _ in range(2):
        out = up.handle(httpx.Response(422, json={"error": "batch envelope: sent_at is not a time"}), [ev1])
        assert out.status == "retry" and "422" in out.reason
    assert len(list(ctx.spool.iter_events(kind="agent.delivery_rejected"))) == 1
    assert list(ctx.spool.iter_events(kind="delivery.rejected")) == []
    assert ctx.spool.depth() >= 2  # the event is still there, nothing silently skipped


def run_enroll(cfg: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(REPO / ".venv/bin/baomi-agent"), "enroll", "--config", str(cfg), *args],
                          capture_output=True, text=True, timeout=60)


def test_enroll_command_errors_and_success(sqlite_collector: Collector, tmp_path: Path) -> None:
    down = run_enroll(agent_config(tmp_path / "a1", "http://127.0.0.1:9", "whatever"))
    assert down.returncode == 2 and "unreachable" in down.stderr
    cfg = agent_config(tmp_path / "a2", sqlite_collector.url, None)
    bad = run_enroll(cfg, "--token", "not-a-token")
    assert bad.returncode == 2 and "token rejected" in bad.stderr
    ok = run_enroll(cfg, "--token", sqlite_collector.token())
    assert ok.returncode == 0 and "enrolled" in ok.stdout, ok.stderr
    again = run_enroll(cfg)
    assert again.returncode == 0 and "already enrolled" in again.stdout


def test_enroll_over_tls_checks_the_ca(tmp_path: Path) -> None:
    from tests.collector.test_tls_syslog import make_ca
    ca, cert, key = make_ca(tmp_path / "pki")
    other_ca, _, _ = make_ca(tmp_path / "other")
    c = Collector(tmp_path / "collector", tls=(cert, key))
    try:
        c.start(verify=ssl.create_default_context(cafile=str(ca)))
        token = c.token()
        wrong = agent_config(tmp_path / "a1", c.url, None)
        wrong.write_text(wrong.read_text().replace("[collector]\n", f'[collector]\nca = "{other_ca}"\n'))
        r = run_enroll(wrong, "--token", token)
        assert r.returncode == 2 and "not signed by the CA" in r.stderr, r.stderr
        right = agent_config(tmp_path / "a2", c.url, None)
        right.write_text(right.read_text().replace("[collector]\n", f'[collector]\nca = "{ca}"\n'))
        r = run_enroll(right, "--token", token)
        assert r.returncode == 0, r.stderr
    finally:
        c.kill()
