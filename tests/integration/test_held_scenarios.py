"""Issue 12's scenarios against a real `baomi-agent run` holding real loop media through
its staging gateway (exFAT through exfat-fuse; ext4 where it costs little): a `cp -r` of
1,000 files, LibreOffice saving straight onto the medium, an eject while a 50 MB file is
pending, the medium yanked mid-copy, and SIGKILL cycles of the whole agent.

After every scenario that refuses something the raw device (or its image) is searched
for 64-byte pieces of each refused file: none may be there. Every subprocess runs with a
timeout, so a hung mount fails the test instead of hanging it."""
from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import sys
import time
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.gateway.support import pieces, raw_device_has, run, stat_returns
from tests.support import enforce_files as docs
from tests.support.agent_run import AgentRun, gateway_unavailable, is_mount, media_component_available
from tests.support.enforce_harness import wait_for
from tests.support.media import LoopMedium
from tests.support.skips import need_root, need_tools

pytestmark = [pytest.mark.root, pytest.mark.timeout(300)]
FSTYPE = "fuse.baomi-gateway"
# loop numbers of this module's media: an agent here is told about its own nodes only,
# and no other test gets a device on them (see LoopMedium.loop_range)
LOOPS = range(500, 600)


@dataclass
class Held:
    agent: AgentRun
    media: list[LoopMedium]
    points: list[Path]         # the users' mount points, served by the gateway

    @property
    def medium(self) -> LoopMedium:
        return self.media[0]

    @property
    def x(self) -> Path:
        return self.points[0]

    def file_events(self, since_seq: int = 0) -> dict[str, list[dict]]:
        """Copy events by the file's path relative to the medium."""
        out: dict[str, list[dict]] = {}
        for e in self.agent.copy_events(since_seq):
            out.setdefault(e["file"]["path"], []).append(e)
        return out

    def release(self, i: int = 0) -> None:
        """Unmounts the user's mount point and waits for the gateway to let go of the medium."""
        seq = self.agent.last_seq()
        r = run("umount", str(self.points[i]))
        assert r.returncode == 0, r.stderr
        self.agent.wait_event(lambda e: e["kind"] == "gateway.released" and
                              e["medium"]["mountpoint"] == str(self.points[i]), 60, "gateway.released", seq)
        dev = Path(self.media[i].devnode).name
        wait_for(lambda: not [m for m in self.agent.hidden_mounts() if Path(m).name.startswith(dev + "-")],
                 30, "the hidden real mount to go")

    def remount_direct(self, i: int = 0) -> Path:
        """The medium mounted again straight from its device, the agent stopped first (it
        would take the new mount over, or enforce it after the write)."""
        assert not is_mount(self.points[i])
        assert self.agent.stop() == 0, self.agent.log_tail()
        return self.media[i].mount(self.agent.tmp / f"direct{i}")

    def real(self, i: int = 0) -> Path:
        """The medium's real filesystem, where the gateway hides it (what is on the medium,
        not what the view shows: a file staged on the host is visible there too)."""
        dev = Path(self.media[i].devnode).name
        (hidden,) = [m for m in self.agent.hidden_mounts() if Path(m).name.startswith(dev + "-")]
        return Path(hidden)


def gateway_mounts_under(root: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        rows = [line.split() for line in f]
    return sorted(r[4] for r in rows if r[r.index("-") + 1] == FSTYPE and
                  (r[4] == str(root) or r[4].startswith(str(root) + "/")))


def gateway_story(agent: AgentRun, seq: int) -> list:
    """What the agent recorded about files and the gateway since seq (for failure messages)."""
    return [(e["kind"], (e.get("file") or {}).get("path"), e.get("details")) for e in agent.events(since_seq=seq)
            if e["kind"].startswith(("gateway.", "file.", "medium.", "enforce."))]


def assert_none_on_device(device: str | Path, refused: list[bytes], n: int = 8) -> None:
    needles = [p for data in refused for p in pieces(data, n)]
    hits = raw_device_has(str(device), needles)
    assert not hits, f"{len(hits)} of {len(needles)} pieces of refused files found on the raw device {device}"


@pytest.fixture
def held_agent(tmp_path: Path, artifacts: Path, request: pytest.FixtureRequest):
    """held_agent(fstype="exfat", size_mb=64, media=1) -> Held: `media` loop media, each
    mounted at tmp_path/usbN before `baomi-agent run` starts and then held by it. Every
    mount below tmp_path and every loop device made here is released afterwards."""
    need_root()
    if media_component_available():
        pytest.skip(media_component_available())
    if gateway_unavailable():
        pytest.skip(f"staging gateway not available here: {gateway_unavailable()}")
    need_tools("cp", "umount", "losetup", "blockdev", "stat")
    made: list[Held] = []
    loops: list[LoopMedium] = []

    def start(fstype: str = "exfat", size_mb: int = 64, media: int = 1) -> Held:
        points = []
        for i in range(media):
            m = LoopMedium(fstype, size_mb=size_mb, label=f"BAOMI{i}", workdir=tmp_path / f"medium{i}",
                           loop_range=LOOPS)
            (tmp_path / f"medium{i}").mkdir()
            loops.append(m)
            m.attach()
            points.append(m.mount(tmp_path / f"usb{i}"))
        name = request.node.name.replace("/", "_")
        agent = AgentRun(tmp_path, loops, log_path=artifacts / f"held-{name}.log")
        h = Held(agent, list(loops), points)
        made.append(h)
        agent.start()
        assert gateway_mounts_under(tmp_path) == sorted([str(agent.gateway_root / "view"), *map(str, points)])
        return h

    yield start
    try:
        for h in made:
            h.agent.stop()
    finally:
        for h in made:
            h.agent.cleanup_mounts()
        for m in loops:
            m.detach()


# a writer of one file from a process of its own: 1 MiB chunks, a line on stdout after
# each ("wrote N"), "closing" before close(); exits 0 when close succeeded, 3 with the
# error's name otherwise
WRITER = r"""
import errno, sys, time
src, dst, pause = sys.argv[1], sys.argv[2], float(sys.argv[3])
data = open(src, "rb").read()
try:
    f = open(dst, "wb")
    for i in range(0, len(data), 1 << 20):
        f.write(data[i:i + (1 << 20)])
        f.flush()
        print("wrote", i + (1 << 20), flush=True)
        time.sleep(pause)
    print("closing", flush=True)
    f.close()
except OSError as e:
    print("error", errno.errorcode.get(e.errno, e.errno), flush=True)
    sys.exit(3)
print("closed", flush=True)
"""


def start_writer(src: Path, dst: Path, pause: float = 0.0) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WRITER, str(src), str(dst), str(pause)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def read_until(proc: subprocess.Popen, pred, what: str) -> str:
    """Lines of the writer until one satisfies pred (the test's timeout bounds the wait)."""
    for line in proc.stdout:
        if pred(line.strip()):
            return line.strip()
    raise AssertionError(f"the writer ended before {what}: rc={proc.wait(10)} {proc.stderr.read()[-500:]}")


# -- 1. cp -r of 1,000 files, 10 marked ---------------------------------------------------------

def make_tree(root: Path, n: int = 1000, seed: int = 12) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """n text files in 10 folders, mostly a few KB, some of 100-300 KB; every 100th marked.
    Returns (clean, marked) by path relative to root."""
    rnd = random.Random(seed)
    clean, marked = {}, {}
    for i in range(n):
        rel = f"dir{i % 10}/file{i:04}.txt"
        if i % 100 == 13:
            data = docs.unique_text(rnd.choice([3_000, 20_000, 150_000]), marked=True)
            marked[rel] = data
        else:
            size = rnd.choice([1_500, 4_000, 9_000]) if i % 25 else rnd.choice([100_000, 300_000])
            data = docs.filler(size, marked=False) + f"\n{i}\n".encode()
            clean[rel] = data
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return clean, marked


def test_cp_r_1000_files_refuses_exactly_the_10_marked(held_agent, tmp_path):
    h = held_agent("exfat", size_mb=96)
    src = tmp_path / "src" / "报告"
    clean, marked = make_tree(src)
    assert len(clean) == 990 and len(marked) == 10
    seq = h.agent.last_seq()
    cp = run("cp", "-r", str(src), str(h.x), timeout=240)
    assert cp.returncode != 0
    refused = {}
    for line in cp.stderr.splitlines():
        assert "Permission denied" in line, line
        assert f"'{h.x}/报告/" in line, line
        rel = line.split(f"'{h.x}/报告/", 1)[1].split("'", 1)[0]
        refused[rel] = line
    assert sorted(refused) == sorted(marked), cp.stderr

    prefix = "报告/"
    want = {prefix + rel for rel in [*clean, *marked]}
    def all_recorded() -> dict | None:
        found = {p: e for p, e in h.file_events(seq).items() if p.startswith(prefix)}
        return found if len(found) >= 1000 else None
    wait_for(all_recorded, 60, "1,000 copy events")
    h.release()                   # everything the gateway had to do is done now
    events = [e for e in h.agent.cli_events() if e["seq"] > seq and e["kind"] in ("file.copied", "file.blocked")]
    by_path: dict[str, list[dict]] = {}
    for e in events:
        by_path.setdefault(e["file"]["path"], []).append(e)
    assert len(events) == 1000 and set(by_path) == want, \
        (len(events), sorted(set(by_path) ^ want)[:10])
    blocked = sorted(p for p, es in by_path.items() if es[0]["kind"] == "file.blocked")
    assert blocked == sorted(prefix + rel for rel in marked)
    assert all(es[0]["details"]["held"] is True for es in by_path.values())
    assert all(by_path[prefix + rel][0]["details"]["content_kept"] is True for rel in marked)

    direct = h.remount_direct()
    for rel, data in clean.items():
        assert (direct / "报告" / rel).read_bytes() == data, rel
    for rel in marked:
        assert not (direct / "报告" / rel).exists(), rel
    names = [p.name for p in (direct / "报告").rglob("*")]
    assert not [n for n in names if n.startswith(".baomi-commit-")], "hidden commit files left on the medium"
    h.medium.unmount()
    assert_none_on_device(h.medium.devnode, list(marked.values()))


# -- 2. LibreOffice converting straight onto the medium ----------------------------------------

def soffice(src: Path, outdir: Path, profile: Path) -> subprocess.CompletedProcess:
    return run("soffice", f"-env:UserInstallation=file://{profile}", "--headless", "--convert-to", "docx",
               "--outdir", str(outdir), str(src), timeout=120)


def docx_text(path: Path) -> str:
    """The text of a .docx (Writer splits runs where the script changes: 机密★|1|年)."""
    xml = zipfile.ZipFile(path).read("word/document.xml").decode()
    return "".join(re.findall(r"<w:t(?: [^>]*)?>([^<]*)</w:t>", xml))


def lo_documents(tmp_path: Path) -> tuple[Path, Path]:
    src = tmp_path / "lo-src"
    src.mkdir()
    body = "\n".join(os.urandom(24).hex() for _ in range(600))   # unique to this run
    (src / "方案.txt").write_text(f"{docs.MARK}\n关于二〇二六年度工作安排的通知\n{body}\n", encoding="utf-8")
    body = "\n".join(os.urandom(24).hex() for _ in range(600))
    (src / "总结.txt").write_text(f"年度工作总结\n{body}\n", encoding="utf-8")
    return src / "方案.txt", src / "总结.txt"


def test_libreoffice_converting_a_marked_document_onto_the_medium_is_refused(held_agent, tmp_path):
    if shutil.which("soffice") is None:
        pytest.skip("needs soffice (LibreOffice Writer; scripts/setup installs libreoffice-writer-nogui)")
    h = held_agent("exfat", size_mb=64)
    marked_src, clean_src = lo_documents(tmp_path)
    profile = tmp_path / "lo-profile"
    # the same conversions on the host: what would reach the medium (docx is deflated, so
    # the raw device holds these bytes, not the text's)
    ref = tmp_path / "lo-ref"
    for src in (marked_src, clean_src):
        r = soffice(src, ref, profile)
        assert r.returncode == 0 and (ref / (src.stem + ".docx")).exists(), r.stdout + r.stderr
    marked_docx, clean_docx = (ref / "方案.docx").read_bytes(), (ref / "总结.docx").read_bytes()
    assert docs.MARK in docx_text(ref / "方案.docx")

    seq = h.agent.last_seq()
    soffice(marked_src, h.x, profile)     # LibreOffice's own exit status: see the test below
    landed = h.x / "方案.docx"
    assert not landed.exists() or landed.stat().st_size == 0, "the marked document reached the medium"
    blocked = wait_for(lambda: h.agent.events("file.blocked", seq), 30, "file.blocked for the conversion")
    assert blocked[0]["details"]["held"] is True and blocked[0]["details"]["content_kept"] is True

    r = soffice(clean_src, h.x, profile)
    assert r.returncode == 0, r.stdout + r.stderr
    got = (h.x / "总结.docx").read_bytes()
    text = docx_text(h.x / "总结.docx")
    assert "年度工作总结" in text and docs.MARK not in text
    h.release()
    direct = h.remount_direct()
    assert (direct / "总结.docx").read_bytes() == got
    assert not [n for n in os.listdir(direct) if n.startswith((".~lock", ".baomi-commit-"))], os.listdir(direct)
    h.medium.unmount()
    # styles, fonts and settings deflate to the same bytes in both documents: search for
    # the pieces of each that the other does not have (its text, random for this run)
    own = {"clean": [p for p in pieces(clean_docx, len(clean_docx) // 512) if p not in marked_docx],
           "marked": [p for p in pieces(marked_docx, len(marked_docx) // 512) if p not in clean_docx]}
    assert len(own["clean"]) >= 8 and len(own["marked"]) >= 8, {k: len(v) for k, v in own.items()}
    # the search finds the conversion that did land...
    found = raw_device_has(h.medium.devnode, own["clean"])
    assert len(found) >= len(own["clean"]) // 2, f"{len(found)} of {len(own['clean'])} pieces of the clean one"
    # ...and nothing of the refused one
    hits = raw_device_has(h.medium.devnode, own["marked"])
    assert not hits, f"{len(hits)} of {len(own['marked'])} pieces of the refused document on the raw device"


def test_libreoffice_marked_conversion_leaves_no_file_and_reports_failure(held_agent, tmp_path):
    """Regression: LibreOffice creates its save file empty and closes it (committed), then
    writes it and closes again (refused, which it ignores), then copies it to the target:
    an empty 方案.docx landed and soffice said nothing. The empty shell now goes with the
    refusal, so the copy fails."""
    if shutil.which("soffice") is None:
        pytest.skip("needs soffice (LibreOffice Writer; scripts/setup installs libreoffice-writer-nogui)")
    h = held_agent("exfat", size_mb=64)
    marked_src, _ = lo_documents(tmp_path)
    r = soffice(marked_src, h.x, tmp_path / "lo-profile")
    landed = h.x / "方案.docx"
    assert not landed.exists(), f"{landed.stat().st_size} B landed; soffice exit {r.returncode}"
    assert r.returncode != 0 or "Error" in r.stdout + r.stderr, "LibreOffice reports success"


def test_rsync_onto_the_medium_records_each_copy_under_the_name_it_ends_with(held_agent, tmp_path):
    """rsync writes every file under a temporary name and renames it after close: the
    copy is judged and recorded under the temporary name, then `file.renamed` names what
    the user sees on the medium. The marked file is refused and none of it lands."""
    need_tools("rsync")
    h = held_agent("exfat", size_mb=64)
    clean = {"报告/总结.txt": docs.unique_text(6_000, marked=False),
             "报告/会议纪要.txt": docs.unique_text(40_000, marked=False)}
    marked = {"报告/方案.txt": docs.unique_text(9_000, marked=True)}
    for rel, data in {**clean, **marked}.items():
        (tmp_path / "src" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "src" / rel).write_bytes(data)
    seq = h.agent.last_seq()
    r = run("rsync", "-rt", f"{tmp_path / 'src'}/", f"{h.x}/", timeout=120)
    assert r.returncode != 0 and "Permission denied" in r.stderr, r.stderr
    renamed = wait_for(lambda: (lambda evs: evs if len(evs) == len(clean) else None)(
        h.agent.events("file.renamed", seq)), 30, "file.renamed for each clean file")
    assert sorted(e["file"]["path"] for e in renamed) == sorted(clean), gateway_story(h.agent, seq)
    copied = {e["file"]["path"]: e for e in h.agent.events("file.copied", seq)}
    for e in renamed:
        rel, tmp = e["file"]["path"], e["details"]["renamed_from"]
        assert os.path.dirname(tmp) == "报告" and os.path.basename(tmp).startswith("." + os.path.basename(rel) + ".")
        assert e["file"]["size"] == copied[tmp]["file"]["size"] == len(clean[rel])
        assert e["user"]["uid"] == 0 and e["medium"]["mountpoint"] == str(h.x)
    [blocked] = h.agent.events("file.blocked", seq)
    assert blocked["file"]["path"].startswith("报告/.方案.txt.") and blocked["details"]["held"] is True
    assert sorted(os.listdir(h.real() / "报告")) == sorted(os.path.basename(n) for n in clean)
    for rel, data in clean.items():
        assert (h.real() / rel).read_bytes() == data
    assert_none_on_device(h.medium.devnode, list(marked.values()))


def test_marked_document_zipped_with_an_executable_is_refused_not_recorded_as_uninspectable(held_agent, tmp_path):
    """A zip holding a marked report and a program: the program has no text to read, so the
    zip was not inspectable (`unsupported`), and that cell's audit let the report onto a
    personal medium although its marking had been found. The level found now decides."""
    h = held_agent("exfat", size_mb=64)
    program = Path("/bin/true").read_bytes()
    report = docs.unique_text(5_000, marked=True)
    for name, text in (("marked.zip", report), ("clean.zip", docs.unique_text(5_000, marked=False))):
        with zipfile.ZipFile(tmp_path / name, "w", zipfile.ZIP_STORED) as z:  # stored: the report's bytes as they are
            z.writestr("方案.txt", text)
            z.writestr("tool", program)
    seq = h.agent.last_seq()
    r = run("cp", str(tmp_path / "marked.zip"), str(tmp_path / "clean.zip"), f"{h.x}/", timeout=60)
    assert r.returncode != 0 and "marked.zip" in r.stderr and "Permission denied" in r.stderr, r.stderr
    events = wait_for(lambda: (lambda e: e if len(e) == 2 else None)(h.file_events(seq)), 30, "two copy events")
    [blocked] = events["marked.zip"]
    assert blocked["kind"] == "file.blocked" and blocked["details"]["held"] is True, gateway_story(h.agent, seq)
    assert blocked["file"]["level"] == "secret" and blocked["file"]["inspectable"] is False
    assert blocked["rule"] == "unclassified.personal.secret" and blocked["file"]["reason"] == "unsupported"
    [clean] = events["clean.zip"]
    assert clean["kind"] == "file.uninspectable" and clean["action"] == "audit"
    assert sorted(os.listdir(h.real())) == ["clean.zip"]
    assert_none_on_device(h.medium.devnode, [report])   # the program is in clean.zip too


# -- 3. eject while a 50 MB file is pending ---------------------------------------------------------

@pytest.mark.parametrize("eject", ["lazy_umount_mid_write", "umount_during_close"])
def test_eject_while_a_50mb_clean_file_is_pending_commits_it_then_releases(held_agent, tmp_path, eject):
    h = held_agent("exfat", size_mb=128)
    data = docs.unique_text(50 * 1024 * 1024, marked=False)
    src = tmp_path / "big.txt"
    src.write_bytes(data)
    seq = h.agent.last_seq()
    w = start_writer(src, h.x / "大文件.txt")
    if eject == "lazy_umount_mid_write":
        # what a desktop eject does when the medium is busy; the writer goes on writing
        read_until(w, lambda l: l == f"wrote {10 << 20}", "10 MiB written")
        r = run("umount", "-l", str(h.x))
        assert r.returncode == 0, r.stderr
    else:
        # a plain umount, retried while it says "target is busy", as an eject retries
        read_until(w, lambda l: l == "closing", "close()")
        while (r := run("umount", str(h.x))).returncode != 0:
            assert "busy" in r.stderr, r.stderr
    out, err = w.communicate(timeout=120)
    assert w.returncode == 0 and out.strip().endswith("closed"), (out[-300:], err[-500:])
    released = h.agent.wait_event(lambda e: e["kind"] == "gateway.released", 120, "gateway.released", seq)
    assert released["details"]["committed"] >= 1, released
    wait_for(lambda: not h.agent.hidden_mounts(), 30, "the hidden real mount to be released")
    assert not is_mount(h.x)
    assert gateway_mounts_under(tmp_path) == [str(h.agent.gateway_root / "view")]
    assert h.agent.running()
    copied = [e for e in h.agent.events("file.copied", seq) if e["file"]["path"] == "大文件.txt"]
    assert len(copied) == 1 and copied[0]["file"]["size"] == len(data)
    direct = h.remount_direct()
    got = (direct / "大文件.txt").read_bytes()
    assert len(got) == len(data) and got == data
    assert not [n for n in os.listdir(direct) if n.startswith(".baomi-commit-")]


# -- 4. the medium yanked mid-copy -------------------------------------------------------------------

@pytest.mark.parametrize("fstype", ["exfat", "ext4"])
def test_medium_yanked_mid_copy_names_what_was_not_committed(held_agent, tmp_path, fstype):
    h = held_agent(fstype, size_mb=128, media=2)   # the second medium shows the agent still enforces
    clean = docs.unique_text(30 * 1024 * 1024, marked=False)
    marked = docs.unique_text(30 * 1024 * 1024, marked=True)
    (tmp_path / "clean.txt").write_bytes(clean)
    (tmp_path / "marked.txt").write_bytes(marked)
    seq = h.agent.last_seq()
    writers = [start_writer(tmp_path / "clean.txt", h.x / "clean.txt", pause=0.03),
               start_writer(tmp_path / "marked.txt", h.x / "marked.txt", pause=0.03)]
    for w in writers:
        read_until(w, lambda l: l == f"wrote {4 << 20}", "4 MiB written")
    dev = Path(h.medium.devnode).name
    (hidden,) = [m for m in h.agent.hidden_mounts() if Path(m).name.startswith(dev + "-")]
    r = run("umount", "-l", hidden)                # the real filesystem goes away under the gateway
    assert r.returncode == 0, r.stderr
    r = run("losetup", "-d", h.medium.devnode)     # and its device with it
    assert r.returncode == 0, r.stderr
    h.medium.devnode = None                        # detached: the node may carry someone else's device next
    for w in writers:
        try:
            out, _ = w.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            w.kill()
            raise AssertionError("a writer hangs on the yanked medium")
        assert w.returncode == 3 and "error" in out, (out[-100:], gateway_story(h.agent, seq))

    def not_committed() -> dict | None:
        found = {e["file"]["path"]: e for e in h.agent.events("gateway.not_committed", seq)}
        return found if {"clean.txt", "marked.txt"} <= set(found) else None
    named = wait_for(not_committed, 60, "gateway.not_committed for both files")
    assert named["clean.txt"]["medium"]["mountpoint"] == str(h.x)
    h.agent.wait_event(lambda e: e["kind"] == "gateway.released" and e["medium"]["mountpoint"] == str(h.x),
                       60, "the yanked medium released", seq)
    assert stat_returns(h.x), "stat on the yanked medium's mount point hangs"
    assert not is_mount(h.x), "the yanked medium's view is still mounted"
    assert h.agent.running(), "the agent died with the medium"
    assert str(h.points[1]) in gateway_mounts_under(tmp_path)
    # the agent keeps enforcing on its other medium
    with pytest.raises(PermissionError):
        (h.points[1] / "marked.txt").write_bytes(marked[:200_000])
    (h.points[1] / "after.txt").write_bytes(b"still here")
    assert (h.points[1] / "after.txt").read_bytes() == b"still here"
    assert not (h.points[1] / "marked.txt").exists()
    assert_none_on_device(h.medium.image, [marked])


# -- 5. SIGKILL of the whole agent ---------------------------------------------------------------------

def test_file_judged_before_sigkill_is_settled_after_restart_not_refused(held_agent, tmp_path):
    """The bug: after a restart the gateway re-judged the files staged before the crash
    while the media component had not yet published their medium, so the judge refused
    every one of them ("medium not known to enforcement"): a clean file was never
    committed (gateway.recovered said "refused") and a marked one was not quarantined."""
    h = held_agent("exfat", size_mb=128)
    clean = docs.unique_text(30 * 1024 * 1024, marked=False)
    marked = docs.unique_text(30 * 1024 * 1024, marked=True)
    (tmp_path / "clean.txt").write_bytes(clean)
    (tmp_path / "marked.txt").write_bytes(marked)
    seq = h.agent.last_seq()
    dev = Path(h.medium.devnode).name
    (hidden,) = [Path(m) for m in h.agent.hidden_mounts() if Path(m).name.startswith(dev + "-")]
    writers = [start_writer(tmp_path / "clean.txt", h.x / "clean.txt"),
               start_writer(tmp_path / "marked.txt", h.x / "marked.txt")]
    # judged clean, its copy to the medium under way: the kill comes the moment the hidden
    # commit name appears on the real filesystem. Waiting for the verdict's event instead
    # let the whole 30 MB commit finish first on a fast machine, leaving nothing to recover.
    def committing() -> bool:
        return any(n.startswith(".baomi-commit-") for n in os.listdir(hidden))
    wait_for(committing, 120, "the commit of clean.txt under way", interval=0.002)
    h.agent.kill()
    assert not (hidden / "clean.txt").exists(), "the commit finished before the kill: nothing left to recover"
    for w in writers:
        w.communicate(timeout=30)
    assert stat_returns(h.x)
    after = h.agent.last_seq()
    h.agent.start()
    story = lambda: gateway_story(h.agent, seq)  # noqa: E731
    rec = h.agent.wait_event(lambda e: e["kind"] in ("gateway.recovered", "gateway.lost") and
                             e["file"]["path"] == "clean.txt", 120, "clean.txt settled after the restart", after)
    assert rec["kind"] == "gateway.recovered" and rec["details"]["outcome"] == "committed", story()
    assert (h.x / "clean.txt").read_bytes() == clean
    copied = [e for e in h.agent.events("file.copied", after) if e["file"]["path"] == "clean.txt"]
    assert copied and copied[0]["details"].get("recovered_after_restart") is True, story()
    # the marked file: refused before the kill, or after the restart, or reported lost; never on the medium
    def marked_settled() -> list | None:
        return [e for e in h.agent.events(since_seq=seq) if (e.get("file") or {}).get("path") == "marked.txt"
                and e["kind"] in ("file.blocked", "gateway.lost")] or None
    settled = wait_for(marked_settled, 120, "marked.txt blocked or reported lost")
    blocked = [e for e in settled if e["kind"] == "file.blocked"]
    assert len(blocked) <= 1 and (not blocked or blocked[0]["details"]["content_kept"] is True), story()
    recovered = [e for e in h.agent.events("gateway.recovered", after) if e["file"]["path"] == "marked.txt"]
    if recovered:   # judged again after the restart: refused and quarantined, not just dropped
        assert recovered[0]["details"]["outcome"] == "refused"
        assert blocked and blocked[0]["details"].get("recovered_after_restart") is True, story()
    assert not (h.x / "marked.txt").exists()
    h.release()
    assert_none_on_device(h.medium.devnode, [marked])


REPORTED = ("gateway.lost", "gateway.not_committed", "gateway.recovered", "file.copied")


def test_sigkill_cycles_during_copies_leave_nothing_hung_nothing_marked_nothing_silently_lost(
        held_agent, tmp_path):
    """SIGKILL of the whole agent at a random moment while `cp` copies a mix of clean and
    marked files, then a restart, BAOMI_HELD_KILL_CYCLES times (default 50). After each
    cycle: no `cp` and no `stat` hangs on the mount point, the restarted agent replaced the
    dead ("transport endpoint is not connected") mounts, the marking of no refused file is
    on the raw device (every tenth cycle and at the end: no 64-byte piece of one), and every
    clean file whose `cp` succeeded is on the medium with identical bytes or named by an
    event. Each cycle's files are removed once checked, so the restarts stay cheap."""
    cycles = int(os.environ.get("BAOMI_HELD_KILL_CYCLES", "50"))
    rnd = random.Random(int(os.environ.get("BAOMI_HELD_KILL_SEED", "12")))
    h = held_agent("exfat", size_mb=96)
    src = tmp_path / "src"
    src.mkdir()
    marked: list[bytes] = []
    all_files: dict[str, tuple[bytes, bool]] = {}
    stats = {"cp_ok": 0, "on_medium": 0, "reported_only": 0, "recovered": 0, "marked": 0}
    for cycle in range(cycles):
        seq = h.agent.last_seq()
        files: dict[str, tuple[bytes, bool]] = {}
        for i in range(3):
            name = f"c{cycle:02}-{i}.txt"
            is_marked = rnd.random() < 0.3
            data = docs.unique_text(rnd.choice([4_000, 64_000, 512_000, 1_500_000, 3_000_000]), is_marked)
            (src / name).write_bytes(data)
            files[name] = all_files[name] = (data, is_marked)
            if is_marked:
                marked.append(data)
        cps = {name: subprocess.Popen(["cp", str(src / name), str(h.x / name)], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL) for name in files}
        time.sleep(rnd.uniform(0.0, 0.35))     # a random point of the copies
        h.agent.kill()
        ok = set()
        for name, p in cps.items():
            try:
                if p.wait(timeout=30) == 0:
                    ok.add(name)
            except subprocess.TimeoutExpired:
                p.kill()
                raise AssertionError(f"cycle {cycle}: cp of {name} hangs after the agent was killed")
        assert stat_returns(h.x), f"cycle {cycle}: stat on the mount point hangs"
        # the dead view answers ENOTCONN (a listing: stat may be answered from the kernel's
        # attribute cache for a moment); a TimeoutExpired here is a hang
        dead = run("ls", "-a", str(h.x), timeout=5)
        assert "Transport endpoint is not connected" in dead.stderr, f"cycle {cycle}: {dead.returncode} {dead.stderr}"
        h.agent.start()
        assert gateway_mounts_under(tmp_path) == sorted([str(h.agent.gateway_root / "view"), str(h.x)]), \
            f"cycle {cycle}: {gateway_mounts_under(tmp_path)}"
        assert stat_returns(h.x) and h.x.is_dir(), f"cycle {cycle}: the mount point is not served again"
        real = h.real()

        def settled() -> dict | None:
            events = h.agent.events(since_seq=seq)
            out = {}
            for name in ok:
                data, is_marked = files[name]
                if is_marked:
                    continue
                p = real / name
                if p.exists():
                    got = p.read_bytes()
                    assert got == data, f"cycle {cycle}: {name} on the medium differs ({len(got)} of {len(data)} B)"
                    out[name] = "on_medium"
                    continue
                named = [e for e in events if e["kind"] in REPORTED and (e.get("file") or {}).get("path") == name
                         and not (e["kind"] == "gateway.recovered" and e["details"].get("outcome") == "refused")]
                if not named:
                    return None
                out[name] = "reported_only"
            return out or {"": "nothing to check"}
        outcome = wait_for(settled, 60, f"cycle {cycle}: every clean file copied with success on the medium "
                                        f"or reported ({gateway_story(h.agent, seq)})")
        for name, (data, is_marked) in files.items():
            p = real / name
            if is_marked:
                assert name not in ok, f"cycle {cycle}: cp of the marked {name} succeeded"
                assert not p.exists(), (f"cycle {cycle}: the marked {name} is on the medium "
                                        f"({p.stat().st_size} B of {len(data)})", gateway_story(h.agent, seq))
            elif p.exists():
                assert p.read_bytes() == data, f"cycle {cycle}: {name} on the medium is not what was written"
        stats["cp_ok"] += len([n for n in ok if not files[n][1]])
        stats["on_medium"] += list(outcome.values()).count("on_medium")
        stats["reported_only"] += list(outcome.values()).count("reported_only")
        stats["recovered"] += len(h.agent.events("gateway.recovered", seq))
        stats["marked"] += sum(1 for _, m in files.values() if m)
        with open(h.medium.devnode, "rb") as dev:
            assert docs.MARK.encode() not in dev.read(), f"cycle {cycle}: a marking on the raw device"
        if cycle % 10 == 9:
            assert_none_on_device(h.medium.devnode, marked)
        for name in files:
            (h.x / name).unlink(missing_ok=True)
    print(f"{cycles} SIGKILL cycles: {stats}")
    # a user's last look at the stick before ejecting it: a listing through the view also
    # removes commit files a killed agent left without a record (when no commit is in flight)
    assert not [n for n in os.listdir(h.x) if n.startswith(".baomi-commit-")]
    h.release()
    direct = h.remount_direct()
    clean = {n: d for n, (d, m) in all_files.items() if not m}
    leftovers = []
    for p in direct.iterdir():
        data = p.read_bytes()
        assert docs.MARK.encode() not in data, f"{p.name}: marked content on the medium"
        if p.name.startswith(".baomi-commit-"):
            leftovers.append(p.name)
        else:   # committed by a recovery after its cycle's check: complete, never torn
            assert p.name in clean and data == clean[p.name], f"{p.name} on the medium is not a file written"
    h.medium.unmount()
    assert_none_on_device(h.medium.devnode, marked)
    if leftovers:
        # clean content only (checked above); the listing removes them unless a recovery's
        # commit was still in flight then: a warning, not a failure, so as not to be flaky
        warnings.warn(f"{len(leftovers)} hidden commit file(s) left on the medium after the SIGKILL cycles: "
                      f"{leftovers}")


def test_loop_medium_detach_leaves_a_node_reused_by_another_device_alone(tmp_path):
    """The bug (tests/support/media.py): a test that pulled its medium (`losetup -d`) freed
    the node, and LoopMedium.detach() then ran `losetup -d` on that node again, by then
    perhaps carrying another test's device."""
    m = LoopMedium("ext4", size_mb=8, workdir=tmp_path, loop_range=range(700, 800))
    node = m.attach()
    other = tmp_path / "other.img"
    other.write_bytes(b"\0" * (4 << 20))
    try:
        assert run("losetup", "-d", node).returncode == 0          # pulled by the test
        r = run("losetup", node, str(other))                        # the node carries another device now
        assert r.returncode == 0, r.stderr
        m.detach()
        backing = Path(f"/sys/block/{Path(node).name}/loop/backing_file").read_text().strip()
        assert backing == str(other), backing
    finally:
        if Path(f"/sys/block/{Path(node).name}/loop/backing_file").exists() and Path(
                f"/sys/block/{Path(node).name}/loop/backing_file").read_text().strip() == str(other):
            run("losetup", "-d", node)
