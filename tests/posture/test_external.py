"""违规外联 against real routes and interfaces in network namespaces: a default route added
and removed, a modem-like interface, a VPN-like tun device, and isolation."""
from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.netns import PROBE, PROBE6, wait_for

from .conftest import events, wait_event, write_config

pytestmark = [pytest.mark.root, pytest.mark.timeout(120)]


def test_a_default_route_is_reported_and_the_probe_answering_is_critical(netlab, start_agent, tmp_path: Path) -> None:
    config = write_config(tmp_path)
    agent = start_agent(config)
    # nothing outside at start: the site route is allowed, the probe has no way out
    assert events(config, "agent.component_failed") == []
    assert events(config, "host.external_connection") == []
    assert events(config, "host.network_changed") == []

    netlab.add_default_route()
    (changed,) = wait_event(config, "host.network_changed", reason="default_route")
    assert changed["details"]["interface"] == "site0" and changed["details"]["subject"] == "0.0.0.0/0"
    assert changed["details"]["route"]["gateway"] == "10.77.0.1" and changed["details"]["at_start"] is False
    (ext,) = wait_event(config, "host.external_connection")
    d = ext["details"]
    assert ext["severity"] == "critical" and ext["action"] == "audit" and ext["rule"] == "posture.external"
    assert (d["probe"], d["address"], d["interface"], d["local_address"]) == (PROBE, "198.51.100.10", "site0",
                                                                              "10.77.0.2")
    assert d["route"] == {"dst": "0.0.0.0/0", "interface": "site0", "gateway": "10.77.0.1", "table": 254}
    assert d["effects"] == [] and netlab.default_routes()  # audit changes nothing

    netlab.del_default_route()
    (ended,) = wait_event(config, "host.external_connection_ended")
    assert ended["details"]["probe"] == PROBE and ended["details"]["since"]
    netlab.add_default_route()  # back again: reported again, once
    wait_event(config, "host.external_connection", count=2)
    wait_event(config, "host.network_changed", count=2, reason="default_route")
    agent.stop()
    assert len(events(config, "host.external_connection")) == 2


def test_an_ipv6_default_route_and_probe(netlab, start_agent, tmp_path: Path) -> None:
    config = write_config(tmp_path, probes=[PROBE, PROBE6])
    start_agent(config)
    netlab.add_default_route(via="fd77::1")
    (changed,) = wait_event(config, "host.network_changed", reason="default_route", subject="::/0")
    assert changed["details"]["route"]["gateway"] == "fd77::1"
    (ext,) = wait_event(config, "host.external_connection", probe=PROBE6)
    assert (ext["details"]["address"], ext["details"]["interface"]) == ("2001:db8:100::10", "site0")
    assert ext["details"]["route"]["dst"] == "::/0" and ext["details"]["local_address"] == "fd77::2"
    assert events(config, "host.external_connection") == [ext]  # no IPv4 way out: the v4 probe fails
    netlab.del_default_route(v6=True)
    wait_event(config, "host.external_connection_ended", probe=PROBE6)


def test_a_host_already_connected_at_start_is_reported_at_once(netlab, start_agent, tmp_path: Path) -> None:
    netlab.add_default_route()
    config = write_config(tmp_path, probe_interval_s=3600.0)  # the first round does not wait for it
    start_agent(config)
    (changed,) = wait_event(config, "host.network_changed", reason="default_route")
    assert changed["details"]["at_start"] is True
    wait_event(config, "host.external_connection", interface="site0")


def test_a_modem_is_reported_and_isolate_brings_it_down(netlab, start_agent, tmp_path: Path) -> None:
    config = write_config(tmp_path, on_external="isolate")
    start_agent(config)
    netlab.add_modem("wwan0")
    wait_event(config, "host.network_changed", reason="interface_added", interface="wwan0")
    wait_event(config, "host.network_changed", reason="address_outside", subject="100.64.0.2/30")
    assert events(config, "host.external_connection") == []  # an interface alone reaches nothing yet

    netlab.add_default_route(via="100.64.0.1")
    (ext,) = wait_event(config, "host.external_connection")
    d = ext["details"]
    assert ext["action"] == "block" and d["interface"] == "wwan0" and d["reason"] == "foreign_interface"
    assert d["route"]["gateway"] == "100.64.0.1" and "100.64.0.2/30" in d["link"]["addresses"]
    assert d["effects"] == [{"effect": "link_down", "interface": "wwan0", "ok": True}]
    assert netlab.link_up("wwan0") is False and netlab.link_up("site0") is True
    assert not netlab.connects("198.51.100.10")
    wait_event(config, "host.external_connection_ended")  # the way out is gone


def test_isolate_on_the_site_interface_deletes_only_the_route(netlab, start_agent, tmp_path: Path) -> None:
    config = write_config(tmp_path, on_external="isolate")
    start_agent(config)
    netlab.add_default_route()
    (ext,) = wait_event(config, "host.external_connection")
    assert ext["details"]["effects"] == [{"effect": "route_delete", "interface": "site0", "route": "0.0.0.0/0",
                                          "ok": True}]
    assert ext["details"]["reason"] == "site_interface"
    assert netlab.default_routes() == "" and netlab.link_up("site0")
    # the site itself is still reached from the agent's namespace, the outside no longer
    assert netlab.connects("10.77.0.1") and not netlab.connects("198.51.100.10")


def test_a_vpn_interface_is_reported(netlab, start_agent, tmp_path: Path) -> None:
    config = write_config(tmp_path)
    start_agent(config)
    made = netlab.run("tuntap", "add", "dev", "tun7", "mode", "tun", check=False)
    if made.returncode:
        pytest.skip(f"cannot create a tun device here: {made.stderr.strip()}")
    (ev,) = wait_event(config, "host.network_changed", reason="interface_added", interface="tun7")
    assert ev["details"]["link"]["kind"] in ("tun", "")


def test_a_dummy_usb_modem_is_reported(netlab, start_agent, tmp_path: Path) -> None:
    config = write_config(tmp_path)
    start_agent(config)
    made = netlab.run("link", "add", "usb0", "type", "dummy", check=False)
    if made.returncode:
        pytest.skip(f"this kernel has no dummy interfaces ({made.stderr.strip()}); the veth modem test covers it")
    netlab.run("addr", "add", "192.168.8.100/24", "dev", "usb0")
    netlab.run("link", "set", "usb0", "up")
    wait_event(config, "host.network_changed", reason="interface_added", interface="usb0")
    wait_event(config, "host.network_changed", reason="route_outside", subject="192.168.8.0/24")


def test_baomi_agent_run_watches_posture(netlab, tmp_path: Path) -> None:
    """The whole daemon, as installed, in the lab's namespace: posture is one of its components."""
    config = write_config(tmp_path)
    exe = Path(sys.executable).parent / "baomi-agent"
    with open(tmp_path / "agent.log", "wb") as log:
        proc = subprocess.Popen([*netlab.exec(), str(exe), "run", "--config", str(config)],
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_event(config, "agent.started")
            assert wait_for(lambda: "host posture: watching" in (tmp_path / "agent.log").read_text(), 30), \
                (tmp_path / "agent.log").read_text()[-2000:]
            netlab.add_default_route()
            (ext,) = wait_event(config, "host.external_connection", timeout_s=30)
            assert ext["details"]["interface"] == "site0" and ext["host"]["class"] == "classified"
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    assert not [e for e in events(config, "agent.component_failed") if "posture" in e["details"]["component"]]
