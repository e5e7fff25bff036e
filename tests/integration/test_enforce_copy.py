"""Copy enforcement on real loop media (ext4 and exFAT through exfat-fuse) with
the real scanner: marked files blocked into the quarantine, every copy recorded."""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.support import enforce_files as docs
from tests.support.enforce_harness import Rig, wait_for, write, write_from_child

pytestmark = [pytest.mark.root, pytest.mark.timeout(240)]


@pytest.mark.parametrize("fstype", ["ext4", "exfat"])
def test_marked_files_are_blocked_unmarked_stay(fstype: str) -> None:
    with Rig(fstype) as rig:
        marked, unmarked = docs.marked_set(), docs.unmarked_set()
        writer = write_from_child({rig.mp / "出差" / name: data for name, data in {**marked, **unmarked}.items()})
        wait_for(lambda: not any((rig.mp / "出差" / n).exists() for n in marked), 30, "marked files to go")
        rig.settle()
        for name, data in unmarked.items():
            assert (rig.mp / "出差" / name).read_bytes() == data, f"{name} should stay"
        assert sorted(os.listdir(rig.mp / "出差")) == sorted(unmarked)  # no 0-byte leftovers

        blocked = {e["file"]["name"]: e for e in rig.events("file.blocked")}
        assert sorted(blocked) == sorted(marked)
        for name, ev in blocked.items():
            assert ev["severity"] == "high" and ev["action"] == "block"
            assert ev["file"]["path"] == f"出差/{name}"
            assert ev["file"]["level"] in ("confidential", "secret", "top_secret")
            assert ev["file"]["evidence"], "a block names its evidence"
            assert ev["medium"]["fs_uuid"] == rig.loop.fs_uuid
            assert ev["user"]["uid"] == 0 and ev["process"]["pid"], ev["process"]
            assert ev["process"]["pid"] == writer, ev["process"]
            assert ev["rule"].startswith("unclassified.personal.")
            assert rig.decrypt(ev["details"]["quarantine_id"]) == marked[name]
        copied = {e["file"]["name"]: e for e in rig.events("file.copied")}
        assert sorted(copied) == sorted(unmarked)
        for name, ev in copied.items():
            assert ev["action"] == "audit" and ev["file"]["level"] == "public"
            assert ev["file"]["size"] == len(unmarked[name])
        assert len(list(rig.comp.quarantine.entries())) == len(marked)


def test_cp_r_of_a_thousand_files(tmp_path: Path) -> None:
    src = tmp_path / "项目"
    marked_names = set()
    for i in range(1000):
        sub = src / f"d{i % 7}"
        sub.mkdir(parents=True, exist_ok=True)
        if i % 100 == 37:
            marked_names.add(f"d{i % 7}/f{i:04}.txt")
            (sub / f"f{i:04}.txt").write_bytes(docs.gbk_text(True, extra=i % 5))
        else:
            (sub / f"f{i:04}.txt").write_bytes(f"普通文件 {i}\n".encode() * (1 + i % 9))
    with Rig("exfat", size_mb=256, inventory=False) as rig:
        subprocess.run(["cp", "-r", str(src), str(rig.mp)], check=True)
        rig.settle(180)
        evs = rig.copy_events()
        paths = [e["file"]["path"] for e in evs]
        assert len(evs) == 1000 and len(set(paths)) == 1000, "one record per copied file"
        blocked = {e["file"]["path"] for e in evs if e["kind"] == "file.blocked"}
        assert blocked == {f"项目/{n}" for n in marked_names}
        left = {str(p.relative_to(rig.mp / "项目")) for p in (rig.mp / "项目").rglob("*") if p.is_file()}
        assert len(left) == 990 and not (left & marked_names)
        assert all(e["process"] and e["process"]["comm"] == "cp" for e in evs)
        # the same content copied again is not scanned again
        misses = rig.comp.verdicts.cache.misses
        subprocess.run(["cp", "-r", str(src), str(rig.mp / "again")], check=True)
        rig.settle(180)
        assert rig.comp.verdicts.cache.misses == misses
        assert len(rig.copy_events()) == 2000


@pytest.mark.parametrize("fstype", ["ext4", "exfat"])
def test_renamed_or_deleted_right_after_writing(fstype: str) -> None:
    with Rig(fstype) as rig:
        write(rig.mp / "~draft.tmp", docs.docx(docs.MARK))
        os.rename(rig.mp / "~draft.tmp", rig.mp / "终稿.docx")
        write(rig.mp / "gone.txt", docs.gbk_text(True))
        try:
            os.unlink(rig.mp / "gone.txt")
        except FileNotFoundError:
            pass  # already blocked: also fine
        write(rig.mp / "plain.tmp", b"nothing to see")
        os.rename(rig.mp / "plain.tmp", rig.mp / "plain.txt")
        try:
            wait_for(lambda: not (rig.mp / "终稿.docx").exists(), 30, "renamed marked file to go")
        except AssertionError:
            if fstype == "exfat":  # documented limitation, docs/enforcement.md, "Known limits"
                pytest.xfail("exfat-fuse: the close-write of a file renamed at once was not delivered")
            raise
        rig.settle()
        assert sorted(p for p in os.listdir(rig.mp) if p != "lost+found") == ["plain.txt"]
        evs = rig.copy_events()
        by_name: dict[str, list] = {}
        for e in evs:
            by_name.setdefault(e["file"]["name"], []).append(e)
        assert [e["kind"] for e in by_name["终稿.docx"]] == ["file.blocked"]
        if fstype == "exfat" and "plain.txt" not in by_name:  # the same documented limitation
            pytest.xfail("exfat-fuse: the close-write of a clean file renamed at once was not delivered")
        assert [e["kind"] for e in by_name["plain.txt"]] == ["file.copied"]
        gone = by_name.get("gone.txt", [])
        if fstype == "exfat" and not gone:
            # FUSE cannot open a file already unlinked, so the kernel drops that one
            # close-write event (fanotify read fails with ENOENT); ext4 keeps it
            return
        assert len(gone) == 1 and gone[0]["file"]["level"] == "secret"
        assert gone[0]["kind"] == "file.blocked" or gone[0]["details"].get("deleted_before_verdict")


@pytest.mark.parametrize("fstype", ["ext4", "exfat"])
def test_marked_file_written_slowly_in_many_chunks(fstype: str) -> None:
    data = docs.gbk_text(True, extra=4000)
    with Rig(fstype) as rig:
        with open(rig.mp / "慢.txt", "wb") as f:
            for i in range(0, len(data), 1024):
                f.write(data[i:i + 1024])
                f.flush()
                os.fsync(f.fileno())
                time.sleep(0.005)
            assert rig.copy_events() == []  # nothing is decided before the writer closes
        wait_for(lambda: not (rig.mp / "慢.txt").exists(), 30, "slowly written file to go")
        rig.settle()
        (ev,) = rig.copy_events()
        assert ev["kind"] == "file.blocked" and ev["file"]["size"] == len(data)
        assert rig.decrypt(ev["details"]["quarantine_id"]) == data


class SlowScanner:
    """The real scanner, with a pause before each scan: a window to unmount in."""

    def __init__(self, real, delay: float):
        self.real, self.delay, self.started = real, delay, 0

    def scan_file(self, path: str, sha256: str | None = None):
        self.started += 1
        time.sleep(self.delay)
        return self.real.scan_file(path, sha256)


@pytest.mark.parametrize("fstype", ["ext4", "exfat"])
def test_medium_unmounted_during_a_scan(fstype: str) -> None:
    with Rig(fstype, scanner_wrap=lambda s: SlowScanner(s, 3.0), inventory=False) as rig:
        write(rig.mp / "机密报告.docx", docs.docx(docs.MARK))
        wait_for(lambda: rig.comp._scanner.started, 10, "the scan to start")
        # a clean eject waits: the file being scanned keeps the medium busy
        busy = subprocess.run(["umount", str(rig.mp)], capture_output=True, text=True)
        assert busy.returncode != 0 and "busy" in busy.stderr, busy.stderr
        # the medium is yanked (lazy unmount, as when the device disappears)
        subprocess.run(["umount", "-l", str(rig.mp)], check=True)
        rig.ctx.bus.publish("medium.unmounted", rig.medium)
        rig.settle()
        (ev,) = rig.events("scan.unfinished")
        assert ev["file"]["name"] == "机密报告.docx" and ev["severity"] == "high"
        assert ev["details"]["unfinished"] and ev["details"]["would_have_been"] == "block"
        assert rig.copy_events() == []


def test_inventory_of_a_medium_already_holding_files() -> None:
    rig = Rig("exfat")
    rig.loop.attach()
    pre = rig.loop.mount()
    for name, data in {**docs.marked_set(), **docs.unmarked_set()}.items():
        write(pre / "旧" / name, data)
    rig.loop.unmount()
    # mounted again with files on it: the agent inventories them
    with rig:
        wait_for(lambda: rig.events("medium.inventory"), 60, "the inventory")
        (inv,) = rig.events("medium.inventory")
        d = inv["details"]
        assert d["files"] == 6 and d["marked"] == 3 and d["levels"].get("public") == 3
        assert d["highest_level"] in ("secret", "top_secret") and d["medium_class"] == "personal"
        found = sorted(e["file"]["name"] for e in rig.events("file.discovered"))
        assert found == sorted(docs.marked_set())
        assert all(e["severity"] == "high" for e in rig.events("file.discovered"))
        # reporting is all: files already there are not removed, and are not copies
        assert len(os.listdir(rig.mp / "旧")) == 6 and rig.copy_events() == []


def test_registered_medium_level_history_rises() -> None:
    from baomi.common.levels import Level
    with Rig("ext4", medium_class="registered") as rig:
        rig.medium.level_ceiling = Level.SECRET  # the record's ceiling: a secret file may go there
        rig.medium.registry_id = "REG-0001"
        write(rig.mp / "报告.docx", docs.docx(docs.MARK))
        rig.settle()
        (ev,) = rig.copy_events()
        assert ev["kind"] == "file.copied" and ev["rule"].endswith("registered.within_ceiling")
        assert (rig.mp / "报告.docx").exists()
        try:
            from baomi.agent.media.history import LevelHistory
        except ImportError:
            pytest.skip("media level history not available")
        assert LevelHistory(rig.cfg.state_dir).get("REG-0001") == Level.SECRET


def test_enforcement_runs_at_the_configured_nice() -> None:
    with Rig("ext4") as rig:
        assert rig.comp.pipeline.nice == 5
        write(rig.mp / "机密报告.docx", docs.docx(docs.MARK))
        wait_for(lambda: rig.events("file.blocked"), 30, "the marked file to be blocked")
        assert not (rig.mp / "机密报告.docx").exists()