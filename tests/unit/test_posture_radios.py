"""Radios kept rfkill-blocked, on a sysfs-shaped tree of real files (rfkillN/type, name, soft, hard)."""
from __future__ import annotations

import errno
from pathlib import Path

import pytest

from baomi.agent.decide.posture import decide_radio
from baomi.agent.posture import radios as radios_mod
from baomi.agent.posture.radios import RadioKeeper, radios
from tests.support.rfkill import add_radio


@pytest.mark.parametrize("soft,ours,block,kind,severity", [
    (True, False, False, None, "info"),
    (True, True, False, None, "info"),
    (False, False, True, "host.radio_blocked", "medium"),
    (False, True, True, "host.radio_unblocked", "high"),
])
def test_radio_table(soft: bool, ours: bool, block: bool, kind: str | None, severity: str) -> None:
    o = decide_radio(soft, ours)
    assert (o.block, o.kind, o.severity) == (block, kind, severity)


class Recorder(list):
    def __call__(self, kind: str, **fields) -> None:
        self.append({"kind": kind, **fields})


def test_radios_are_blocked_kept_blocked_and_unblocks_are_reported(tmp_path: Path) -> None:
    wlan = add_radio(tmp_path, 0, "wlan", "phy0")
    add_radio(tmp_path, 1, "bluetooth", "hci0", soft="1")  # already off: nothing to say
    add_radio(tmp_path, 2, "wwan", "wwan0", hard="1")      # hardware switch off: blocked anyway
    rec = Recorder()
    keeper = RadioKeeper(rec, tmp_path)
    keeper.run_once()
    assert [(e["kind"], e["details"]["type"], e["details"]["at_start"]) for e in rec] == [
        ("host.radio_blocked", "wlan", True), ("host.radio_blocked", "wwan", True)]
    assert rec[1]["details"]["hard_blocked"] is True
    assert rec[0]["details"]["effects"] == [{"effect": "rfkill_block", "radio": "rfkill0", "ok": True}]
    assert all(r.soft for r in radios(tmp_path))
    keeper.run_once()
    assert len(rec) == 2
    (wlan / "soft").write_text("0\n")  # `rfkill unblock wifi`, or the desktop's toggle
    usb = add_radio(tmp_path, 3, "wlan", "phy1")  # a USB Wi-Fi adapter plugged in
    keeper.run_once()
    assert [(e["kind"], e["severity"], e["details"]["name"], e["details"]["at_start"]) for e in rec[2:]] == [
        ("host.radio_unblocked", "high", "phy0", False), ("host.radio_blocked", "medium", "phy1", False)]
    assert (wlan / "soft").read_text() == "1" and (usb / "soft").read_text() == "1"


def test_a_radio_that_cannot_be_blocked_is_recorded_as_such(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    add_radio(tmp_path, 0, "wlan", "phy0")

    def refuse(root: Path, radio) -> None:  # as a driver without soft-block support answers
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")
    monkeypatch.setattr(radios_mod, "block", refuse)
    rec = Recorder()
    keeper = RadioKeeper(rec, tmp_path)
    keeper.run_once()
    assert rec[0]["kind"] == "host.radio_blocked" and rec[0]["details"]["effects"][0]["ok"] is False
    assert "not supported" in rec[0]["details"]["effects"][0]["error"]
    keeper.run_once()  # tried again every poll, reported once, never counted as an unblock
    assert [e["kind"] for e in rec] == ["host.radio_blocked"]
    monkeypatch.undo()
    keeper.run_once()  # the block works at last: it is said so
    assert [e["details"]["effects"][0]["ok"] for e in rec] == [False, True]
    assert (tmp_path / "rfkill0/soft").read_text() == "1"


def test_no_rfkill_class_means_no_radios(tmp_path: Path) -> None:
    assert radios(tmp_path / "missing") == []
