"""[collector] and [spool] settings: defaults and clear errors naming the key."""
from __future__ import annotations

from pathlib import Path

import pytest

from baomi.agent.config import load
from baomi.common.tomlconf import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "agent.toml"
    p.write_text(text)
    return p


def test_defaults(tmp_path: Path) -> None:
    cfg = load(write(tmp_path, ""))
    assert cfg.spool.max_bytes == 512 * 1024 * 1024
    assert cfg.collector.heartbeat_s == 30 and cfg.collector.url is None  # a central change applies within 30 s


@pytest.mark.parametrize("text, key", [
    ("[spool]\nmax_bytes = 1000\n", "spool.max_bytes"),
    ("[spool]\noverflow_events = 0\n", "spool.overflow_events"),
    ("[collector]\nbackoff_min_s = 5\nbackoff_max_s = 1\n", "collector.backoff_max_s"),
    ('[collector]\nurl = "ftp://x"\n', "collector.url"),
    ('[collector]\nurl = "http://collector.example:8443"\n', "collector.url"),
    ("[collector]\nbatch_size = 0\n", "collector.batch_size"),
])
def test_bad_values_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(write(tmp_path, text))
    assert key in str(err.value)
