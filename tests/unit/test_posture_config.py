"""[posture] in agent.toml: probes, networks and allow-list entries are checked at load, with
the file and the key named; and the probe syntax itself."""
from __future__ import annotations

from pathlib import Path

import pytest

from baomi.agent import config
from baomi.agent.posture.probe import Probe, parse_probe, run_probe
from baomi.common.tomlconf import ConfigError


def _load(tmp_path: Path, body: str) -> config.AgentConfig:
    path = tmp_path / "agent.toml"
    path.write_text("[posture]\n" + body, "utf-8")
    return config.load(path)


def test_defaults(tmp_path: Path) -> None:
    p = _load(tmp_path, "").posture
    assert (p.enabled, p.probes, p.allowed_networks, p.on_external) == (True, [], [], "audit")
    assert (p.probe_interval_s, p.max_password_age_days, p.shadow_file) == (60.0, 60, Path("/etc/shadow"))


def test_a_full_section_loads(tmp_path: Path) -> None:
    p = _load(tmp_path, 'probes = ["www.example.org:443", "198.51.100.7:80", "[2001:db8::7]:443", '
                        '"outside.example.org"]\nallowed_networks = ["10.0.0.0/8", "fd00::/8"]\n'
                        'on_external = "isolate"\nallowed_listeners = ["22", "sshd:22", "10.1.2.3:*"]\n'
                        'shadow_file = "shadow"\n').posture
    assert p.on_external == "isolate" and len(p.probes) == 4
    assert p.shadow_file == tmp_path / "shadow"  # relative to agent.toml


@pytest.mark.parametrize("body,key,message", [
    ('allowed_networks = ["10.0.0.0/8", "office"]', "posture.allowed_networks", "CIDR"),
    ('probes = ["198.51.100.7"]', "posture.probes[0]", "needs a port"),
    ('probes = ["ok.example:443", "a.example:99999"]', "posture.probes[1]", "1-65535"),
    ('probes = ["2001:db8::7:443"]', "posture.probes[0]", "[ADDRESS]:PORT"),
    ('allowed_listeners = ["ssh"]', "posture.allowed_listeners[0]", "PORT"),
    ('on_external = "shutdown"', "posture.on_external", "'audit', 'isolate'"),
    ("probe_interval_s = 0", "posture.probe_interval_s", "> 0"),
    ("max_password_age_days = 0", "posture.max_password_age_days", "two months"),
    ("probe = []", "posture.probe", "unknown key"),
    ('on_external = "isolate"', "posture.on_external", "needs allowed_networks"),
])
def test_mistakes_name_the_key(tmp_path: Path, body: str, key: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, body)
    assert err.value.key == key and message in err.value.message
    assert err.value.file.endswith("agent.toml")


@pytest.mark.parametrize("text,probe", [
    ("www.example.org:443", Probe("www.example.org:443", "www.example.org", 443)),
    ("[2001:db8::7]:8443", Probe("[2001:db8::7]:8443", "2001:db8::7", 8443)),
    ("outside.example.org", Probe("outside.example.org", "outside.example.org", None)),
])
def test_probe_syntax(text: str, probe: Probe) -> None:
    assert parse_probe(text) == probe


def test_a_probe_that_cannot_resolve_fails_without_raising() -> None:
    r = run_probe(parse_probe("no-such-host.invalid:443"), 1.0)
    assert r.ok is False and r.error and r.error.startswith("resolve")
