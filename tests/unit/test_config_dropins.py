"""agent.toml with agent.d/*.toml drop-ins (merged in name order, like fail2ban's jail.d),
and `baomi-agent config show` naming the file each value comes from."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from baomi.agent import config
from baomi.common.tomlconf import ConfigError

REPO = Path(__file__).resolve().parents[2]


def _layout(tmp_path: Path) -> Path:
    main = tmp_path / "agent.toml"
    main.write_text('[host]\nclass = "classified"\nname = "pc-1"\n'
                    '[scan]\nrule_dirs = ["rules.d"]\njobs = 2\n'
                    '[policy.actions]\n"unclassified.personal.internal" = "block"\n')
    d = tmp_path / "agent.d"
    d.mkdir()
    (d / "20-site.toml").write_text('[scan]\njobs = 3\n[policy.actions]\n"classified.personal" = "read_only"\n')
    (d / "10-preseed.toml").write_text('[collector]\nurl = "https://c.example:8443"\ntoken = "secret-token"\n'
                                       '[scan]\njobs = 1\nrule_dirs = ["site-rules"]\n')
    (d / ".30-hidden.toml").write_text("this is not TOML and is ignored")
    (d / "README").write_text("not a drop-in")
    return main


def test_dropins_merge_in_name_order(tmp_path: Path) -> None:
    cfg = config.load(_layout(tmp_path))
    assert cfg.host.class_ == "classified" and cfg.host.name == "pc-1"
    assert cfg.scan.jobs == 3                                          # 20-site wins over 10-preseed
    assert cfg.scan.rule_dirs == [tmp_path / "site-rules"]             # lists are replaced, paths from agent.toml's folder
    assert cfg.policy.actions == {"unclassified.personal.internal": "block", "classified.personal": "read_only"}
    assert cfg.collector.url == "https://c.example:8443"
    d = tmp_path / "agent.d"
    assert cfg.sources["scan.jobs"] == d / "20-site.toml"
    assert cfg.sources["collector.token"] == d / "10-preseed.toml"
    assert cfg.sources["host.class"] == tmp_path / "agent.toml"
    assert cfg.sources["policy.actions.classified.personal"] == d / "20-site.toml"


def test_a_bad_value_in_a_dropin_names_the_dropin(tmp_path: Path) -> None:
    main = _layout(tmp_path)
    (tmp_path / "agent.d" / "40-bad.toml").write_text("[enforce]\nnice = 99\n")
    with pytest.raises(ConfigError) as exc:
        config.load(main)
    assert exc.value.file.endswith("40-bad.toml") and exc.value.key == "enforce.nice"
    assert "40-bad.toml: enforce.nice: must be a whole number from -20 to 19" in str(exc.value)
    (tmp_path / "agent.d" / "40-bad.toml").write_text("[enforce\n")
    with pytest.raises(ConfigError, match="40-bad.toml:1: TOML syntax error"):
        config.load(main)


def test_dropins_alone_configure_a_host_without_agent_toml(tmp_path: Path, monkeypatch) -> None:
    # the preseed case: the installer writes /etc/baomi/agent.d/ before agent.toml exists
    monkeypatch.setattr(config, "DEFAULT_CONFIG", tmp_path / "agent.toml")
    monkeypatch.delenv("BAOMI_AGENT_CONFIG", raising=False)
    (tmp_path / "agent.d").mkdir()
    (tmp_path / "agent.d" / "preseed.toml").write_text('[host]\nclass = "classified"\n')
    cfg = config.load()
    assert cfg.host.class_ == "classified" and cfg.source is None
    with pytest.raises(ConfigError, match="file not found"):  # an explicit file must exist
        config.load(tmp_path / "missing.toml")


def _show(main: Path, *extra: str) -> str:
    out = subprocess.run([sys.executable, "-m", "baomi.agent.cli", "config", "show", "--config", str(main), *extra],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_config_show_names_each_source_and_hides_the_token(tmp_path: Path) -> None:
    main = _layout(tmp_path)
    text = _show(main)
    assert "secret-token" not in text
    lines = {line.split("=")[0].strip(): line for line in text.splitlines() if "=" in line and "#" in line}
    assert lines["jobs"].endswith("# " + str(tmp_path / "agent.d" / "20-site.toml"))
    assert lines["class"].endswith("# " + str(main)) and '"classified"' in lines["class"]
    assert lines["idle_limit_s"].endswith("# default")
    table = json.loads(_show(main, "--json"))
    assert table["collector"]["token"] == {"value": "(set, not shown)",
                                           "source": str(tmp_path / "agent.d" / "10-preseed.toml")}
    assert table["enforce"]["nice"] == {"value": 5, "source": "default"}


def test_config_show_reports_a_bad_file_clearly(tmp_path: Path) -> None:
    main = _layout(tmp_path)
    (tmp_path / "agent.d" / "50-typo.toml").write_text("[scan]\njbos = 2\n")
    out = subprocess.run([sys.executable, "-m", "baomi.agent.cli", "config", "show", "--config", str(main)],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "50-typo.toml: scan.jbos: unknown key" in out.stderr
