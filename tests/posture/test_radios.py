"""Radios kept blocked by the running component (a sysfs-shaped rfkill tree: tests never
touch the host's own radios, sysfs not being per namespace)."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.netns import wait_for
from tests.support.rfkill import add_radio

from .conftest import wait_event, write_config

pytestmark = [pytest.mark.root, pytest.mark.timeout(60)]


def test_the_component_blocks_radios_and_blocks_them_again(netlab, start_agent, tmp_path: Path) -> None:
    wlan = add_radio(tmp_path / "rfkill", 0, "wlan", "phy0")
    config = write_config(tmp_path)
    start_agent(config)
    (ev,) = wait_event(config, "host.radio_blocked", type="wlan")
    assert ev["details"]["at_start"] is True and ev["action"] == "block"
    assert (wlan / "soft").read_text() == "1"
    (wlan / "soft").write_text("0")
    (again,) = wait_event(config, "host.radio_unblocked", name="phy0")
    assert again["severity"] == "high" and again["details"]["effects"][0]["ok"] is True
    assert wait_for(lambda: (wlan / "soft").read_text() == "1", 5)
    bt = add_radio(tmp_path / "rfkill", 1, "bluetooth", "hci0")  # a USB Bluetooth dongle
    wait_event(config, "host.radio_blocked", type="bluetooth", at_start=False)
    assert (bt / "soft").read_text() == "1"
