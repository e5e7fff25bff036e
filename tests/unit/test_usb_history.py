"""USB storage history from real kernel log lines: the classic syslog kern.log (plain and
gzipped, old and RFC 3339 time stamps) and the journal's export format (a binary-safe field
included), merged with the agent's own records."""
from __future__ import annotations

import calendar
import os
import shutil
import time
from pathlib import Path

import pytest

from baomi.agent.posture import usb_history as uh

DATA = Path(__file__).resolve().parents[1] / "posture/data"
SANDISK = ("0781", "5567", "4C530001231120115142")


@pytest.fixture
def shanghai(monkeypatch: pytest.MonkeyPatch):
    """Classic syslog stamps are local time: make the zone known (China Standard Time, UTC+8)."""
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def _logs(tmp: Path) -> Path:
    for name in ("kern.log.2", "kern.log.1.gz"):
        shutil.copy(DATA / name, tmp / name)
    # rotated in March 2025, as logrotate would leave them
    for name, day in (("kern.log.2", 5), ("kern.log.1.gz", 12)):
        when = calendar.timegm((2025, 3, day, 0, 0, 0))
        os.utime(tmp / name, (when, when))
    return tmp


def test_kern_logs_plain_and_gzipped(tmp_path: Path, shanghai: None) -> None:
    devices, problems = uh.from_kern_logs([str(_logs(tmp_path) / "kern.log*")])
    assert problems == []
    assert [(d.vendor_id, d.product_id, d.serial) for d in devices] == [
        SANDISK, ("0951", "1666", "60A44C413A8CF1A0B9930011")]  # the Logitech receiver is no storage
    sandisk, kingston = devices
    assert (sandisk.product, sandisk.manufacturer) == ("Cruzer Blade", "SanDisk")
    # 09:15:02 and the disconnect at 09:40:11 local time (UTC+8), year from the file
    assert (sandisk.first_seen, sandisk.last_seen) == ("2025-03-04T01:15:02Z", "2025-03-04T01:40:11Z")
    assert kingston.first_seen == "2025-03-11T06:02:17Z" and kingston.product == "DataTraveler 3.0"  # UAS


def test_a_classic_log_across_new_year_dates_december_in_the_year_before(tmp_path: Path, shanghai: None) -> None:
    log = tmp_path / "kern.log"
    log.write_text("Dec 31 23:59:01 desk kernel: [ 1.0] usb 3-2: New USB device found, idVendor=090c, "
                   "idProduct=1000, bcdDevice=11.00\n"
                   "Dec 31 23:59:01 desk kernel: [ 1.1] usb 3-2: SerialNumber: 0376119070003553\n"
                   "Dec 31 23:59:02 desk kernel: [ 1.2] usb-storage 3-2:1.0: USB Mass Storage device detected\n"
                   "Jan  2 08:00:00 desk kernel: [ 9.0] usb 3-2: USB disconnect, device number 4\n")
    when = calendar.timegm((2025, 1, 3, 0, 0, 0))
    os.utime(log, (when, when))
    (d,), _ = uh.from_kern_logs([str(log)])
    assert (d.first_seen, d.last_seen, d.serial) == ("2024-12-31T15:59:01Z", "2025-01-02T00:00:00Z", "0376119070003553")


def test_journal_export_with_a_binary_safe_message() -> None:
    devices, problems = uh.from_journal([DATA / "journal-kernel.export"], run_journalctl=False)
    assert problems == []
    generic, sandisk = devices
    assert (generic.vendor_id, generic.product_id, generic.serial, generic.manufacturer) == ("058f", "6387", "", "Generic")
    assert (generic.first_seen, generic.last_seen) == ("2024-11-20T02:02:33Z", "2024-11-20T02:32:33Z")
    assert (sandisk.vendor_id, sandisk.product_id, sandisk.serial) == SANDISK
    assert sandisk.product == "Cruzer Blade"  # this MESSAGE is in the binary-safe encoding:
    assert b"MESSAGE\n" + (len(b"usb 1-1: Product: Cruzer Blade")).to_bytes(8, "little") in \
        (DATA / "journal-kernel.export").read_bytes()


def test_merge_counts_one_plug_in_seen_by_both_logs_once_and_adds_the_agents_records(tmp_path: Path,
                                                                                     shanghai: None) -> None:
    logs, _ = uh.from_kern_logs([str(_logs(tmp_path) / "kern.log*")])
    journal, _ = uh.from_journal([DATA / "journal-kernel.export"], run_journalctl=False)
    ours = uh.from_agent([{"kind": "medium.inserted", "time": "2025-06-01T02:00:00.000000Z",
                           "medium": {"vendor_id": "0781", "product_id": "5567", "serial": SANDISK[2],
                                      "product": "Cruzer Blade", "class": "personal"}},
                          {"kind": "medium.inserted", "time": "2025-06-02T02:00:00.000000Z",
                           "medium": {"vendor_id": "", "devnode": "/dev/mmcblk0"}}])  # an SD slot: no USB ids
    merged = {d.key: d for d in uh.merge([*logs, *journal, *ours])}
    assert len(merged) == 3
    s = merged[SANDISK]
    assert (s.first_seen, s.last_seen, s.times_seen) == ("2025-03-04T01:15:02Z", "2025-06-01T02:00:00Z", 2)
    assert s.to_json()["sources"] == ["agent", "journal:journal-kernel.export", "kern.log:kern.log.2"]


def test_unreadable_and_damaged_files_are_named_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "kern.log.3.gz").write_bytes(b"not gzip at all")
    devices, problems = uh.from_kern_logs([str(tmp_path / "kern.log*")])
    assert devices == [] and len(problems) == 1 and "kern.log.3.gz" in problems[0]
    _, problems = uh.from_journal([tmp_path / "missing.export"], run_journalctl=False)
    assert "missing.export" in problems[0]
