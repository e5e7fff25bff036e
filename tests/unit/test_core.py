"""The shared core: levels, config validation, event chain and the spool."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from baomi.agent import config
from baomi.common import events
from baomi.common.levels import Level
from baomi.agent.spool import Spool
from baomi.common.tomlconf import ConfigError


def test_level_parse_and_order() -> None:
    assert Level.parse("secret") is Level.SECRET
    assert Level.parse("机密") is Level.SECRET
    assert Level.parse("Top Secret") is Level.TOP_SECRET
    assert Level.TOP_SECRET > Level.SECRET > Level.CONFIDENTIAL > Level.INTERNAL > Level.PUBLIC
    with pytest.raises(ValueError, match="unknown level"):
        Level.parse("classified-ish")


def test_config_defaults_and_relative_paths(tmp_path: Path) -> None:
    f = tmp_path / "agent.toml"
    f.write_text('[host]\nclass = "classified"\n[paths]\nstate_dir = "state"\n')
    cfg = config.load(f)
    assert cfg.host.class_ == "classified"
    assert cfg.state_dir == tmp_path / "state"
    assert cfg.screenlock.idle_limit_s == 300


@pytest.mark.parametrize("text,needle", [
    ('[screenlock]\nidle_limit_s = 301\n', "screenlock.idle_limit_s"),
    ('[host]\nclass = "secret"\n', "host.class"),
    ('[host]\nkind = 1\n', "host.kind: unknown key"),
    ('[media]\nextra_removable = "loop*"\n', "media.extra_removable"),
    ('[paths\n', ":1: TOML syntax error"),
])
def test_config_errors_name_file_and_key(tmp_path: Path, text: str, needle: str) -> None:
    f = tmp_path / "agent.toml"
    f.write_text(text)
    with pytest.raises(ConfigError) as err:
        config.load(f)
    assert str(f) in str(err.value) and needle in str(err.value)


def test_spool_chain_survives_reopen(tmp_path: Path) -> None:
    sp = Spool(tmp_path / "spool.db", "agent1")
    a = sp.record("medium.inserted", severity="low")
    b = sp.record("file.blocked", severity="high", action="block")
    sp.close()
    sp = Spool(tmp_path / "spool.db", "agent1")
    c = sp.record("agent.heartbeat")
    got = list(sp.iter_events())
    assert [e["seq"] for e in got] == [1, 2, 3]
    assert events.verify_chain(got) is None
    assert c["prev_hash"] == b["hash"] and b["prev_hash"] == a["hash"]
    assert all(events.validate(e) is None for e in got)
    # tampering with a stored body breaks the chain at that event
    got[1]["action"] = "allow"
    assert events.verify_chain(got) == 1
    assert sp.ack(2) == 2 and sp.depth() == 1


def test_spool_is_durable_sqlite_wal(tmp_path: Path) -> None:
    sp = Spool(tmp_path / "spool.db", "agent1")
    sp.record("agent.started")
    db = sqlite3.connect(tmp_path / "spool.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    body = json.loads(db.execute("SELECT body FROM events").fetchone()[0])
    assert body["kind"] == "agent.started" and body["agent_id"] == "agent1"


def test_event_validation_names_the_problem() -> None:
    assert "lacks field" in events.validate({"kind": "x.y"})
    for kind in ("nodot", "x.y", "file.copy"):
        with pytest.raises(ValueError, match="not in the catalogue"):
            events.make_event(kind)


def test_shipped_config_files_load() -> None:
    from baomi.service import config as collector_config

    repo = Path(__file__).resolve().parents[2]
    cfg = config.load(repo / "packaging/etc/agent.toml")
    assert cfg.host.class_ == "unclassified" and cfg.screenlock.idle_limit_s == 300
    col = collector_config.load(repo / "packaging/etc/collector.toml")
    assert col.port == 8443 and col.tls.cert is not None


def test_collector_refuses_plain_http_off_loopback(tmp_path: Path) -> None:
    from baomi.service import config as collector_config

    f = tmp_path / "collector.toml"
    f.write_text('listen = "0.0.0.0:8080"\n')
    with pytest.raises(ConfigError, match="plain HTTP is allowed only on loopback"):
        collector_config.load(f)
