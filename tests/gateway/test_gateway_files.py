"""What users do on a held medium: cp, cp -r, overwrite, append, rename, truncate, mmap,
parallel writers. After every refusal, the raw loop device is searched for pieces of
the refused content: none may be there."""
from __future__ import annotations

import errno
import mmap
import os
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.support.enforce_harness import wait_for
from tests.support.skips import need_tools

from .support import (MARKS, assert_not_on_device, clean_bytes, marked_bytes, pieces, raw_device_has, run)

pytestmark = [pytest.mark.root]


def test_gateway_view_replaces_real_mount(held):
    from baomi.agent.gateway import FSTYPE
    with open("/proc/self/mountinfo") as f:
        top = [line.split() for line in f if line.split()[4] == str(held.x)][-1]
    assert top[top.index("-") + 1] == FSTYPE
    assert held.gw.mode("m1") == "held"
    st = os.stat(held.roots / "real")
    assert st.st_uid == 0 and (st.st_mode & 0o077) == 0, "the real fs parent must be root-only"
    assert held.x.stat().st_dev != held.real.stat().st_dev


def test_gateway_cp_marked_file_fails_with_permission_denied(held, tmp_path):
    secret = marked_bytes(200 * 1024)
    src = tmp_path / "report.bin"
    src.write_bytes(secret)
    r = run("cp", str(src), str(held.x))
    assert r.returncode != 0
    assert "Permission denied" in r.stderr
    assert not (held.real / "report.bin").exists(), "the refused file is on the medium right after cp"
    assert "report.bin" not in os.listdir(held.x)
    assert [f["path"] for f in held.events.named("gateway.refused")] == ["report.bin"]
    assert_not_on_device(held.dev, [secret])


def test_gateway_clean_file_committed_with_identical_bytes(held, tmp_path):
    data = clean_bytes(3 * 1024 * 1024 + 17)
    src = tmp_path / "clean.bin"
    src.write_bytes(data)
    r = run("cp", str(src), str(held.x))
    assert r.returncode == 0, r.stderr
    assert (held.real / "clean.bin").read_bytes() == data   # on the medium when cp returns
    assert (held.x / "clean.bin").read_bytes() == data
    assert not [n for n in os.listdir(held.real) if n.startswith(".baomi-commit-")]
    # positive control for the raw-device search used everywhere else
    assert raw_device_has(held.dev, pieces(data)), "search of the raw device finds committed content"


def test_gateway_cp_r_200_files_refuses_exactly_the_5_marked(held, tmp_path):
    tree = tmp_path / "tree"
    marked_names, contents = set(), {}
    for i in range(200):
        d = tree / f"d{i % 7}"
        d.mkdir(parents=True, exist_ok=True)
        name = f"d{i % 7}/f{i:03d}.txt"
        if i in (3, 50, 99, 150, 199):
            data = marked_bytes(4096 + i * 13, MARKS[i % 2])
            marked_names.add(name)
        else:
            data = clean_bytes(1000 + i * 97)
        contents[name] = data
        (tree / name).write_bytes(data)
    r = run("cp", "-r", str(tree), str(held.x))
    assert r.returncode != 0, (held.events.items[:5], os.listdir(held.x), os.listdir(held.real))
    assert r.stderr.count("Permission denied") == 5, r.stderr
    refused = {f["path"] for f in held.events.named("gateway.refused")}
    assert refused == {f"tree/{n}" for n in marked_names}
    for name, data in contents.items():
        p = held.real / "tree" / name
        if name in marked_names:
            assert not p.exists()
        else:
            assert p.read_bytes() == data, name
    assert_not_on_device(held.dev, [contents[n] for n in marked_names])


def test_gateway_overwrite_clean_file_with_marked_keeps_old_content(held, tmp_path):
    old = clean_bytes(100 * 1024)
    (held.x / "plan.txt").write_bytes(old)
    assert (held.real / "plan.txt").read_bytes() == old
    secret = marked_bytes(120 * 1024)
    src = tmp_path / "plan.txt"
    src.write_bytes(secret)
    r = run("cp", str(src), str(held.x / "plan.txt"))
    assert r.returncode != 0 and "Permission denied" in r.stderr
    assert (held.real / "plan.txt").read_bytes() == old
    assert (held.x / "plan.txt").read_bytes() == old
    assert_not_on_device(held.dev, [secret])


def test_gateway_refused_save_into_an_empty_placeholder_leaves_no_file(held):
    """Regression (LibreOffice's save): a new file created empty and closed, then written
    with marked content: the refusal takes the empty shell with it."""
    p = held.x / "lu1234.tmp"
    p.touch()
    assert (held.real / "lu1234.tmp").exists()
    with pytest.raises(PermissionError):
        with open(p, "r+b") as f:
            f.write(marked_bytes(20 * 1024))
    assert not (held.real / "lu1234.tmp").exists()
    assert not p.exists()


def test_gateway_refused_overwrite_of_an_existing_empty_file_keeps_it(held, tmp_path):
    """An empty file that was on the medium already is the user's, not a placeholder."""
    (held.real / "empty.txt").touch()
    src = tmp_path / "empty.txt"
    src.write_bytes(marked_bytes(20 * 1024))
    r = run("cp", str(src), str(held.x / "empty.txt"))
    assert r.returncode != 0 and "Permission denied" in r.stderr
    assert (held.real / "empty.txt").read_bytes() == b""


def test_gateway_append_judges_the_whole_file(held):
    first = clean_bytes(50 * 1024)
    (held.x / "log.txt").write_bytes(first)
    more = clean_bytes(10 * 1024)
    with open(held.x / "log.txt", "ab") as f:
        f.write(more)
    assert (held.real / "log.txt").read_bytes() == first + more
    # an append that adds the marking in two pieces: only the whole file shows it
    tail = os.urandom(30 * 1024)
    with pytest.raises(PermissionError):
        with open(held.x / "log.txt", "ab") as f:
            f.write(b"xx TOP SEC")
            f.flush()
            f.write(b"RET yy" + tail)
    assert (held.real / "log.txt").read_bytes() == first + more
    assert_not_on_device(held.dev, [tail])


def test_gateway_two_writers_opening_an_existing_file_at_once_both_append(held):
    """Two processes open the same existing file for appending at the same moment, while
    its old content is still being copied into staging for the first: both must write
    into one held copy, as into one file on any filesystem. Two copies would let the
    last commit silently drop the other writer's lines."""
    base = clean_bytes(16 * 1024 * 1024)
    (held.x / "big.log").write_bytes(base)
    barrier = threading.Barrier(2)
    fds: dict[int, int] = {}

    def opener(w: int) -> None:
        barrier.wait()
        fds[w] = os.open(held.x / "big.log", os.O_WRONLY | os.O_APPEND)

    threads = [threading.Thread(target=opener, args=(w,)) for w in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(fds) == [0, 1]
    os.write(fds[0], b"\nfirst writer\n")
    os.write(fds[1], b"second writer\n")
    os.close(fds[0])
    os.close(fds[1])
    assert (held.real / "big.log").read_bytes() == base + b"\nfirst writer\nsecond writer\n"


def test_gateway_rename_before_close(held):
    data = clean_bytes(256 * 1024)
    fd = os.open(held.x / "draft.tmp", os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, data)
    os.rename(held.x / "draft.tmp", held.x / "final.bin")
    assert os.path.exists(held.x / "final.bin") and not os.path.exists(held.x / "draft.tmp")
    os.close(fd)
    assert (held.real / "final.bin").read_bytes() == data
    assert not (held.real / "draft.tmp").exists()
    # the same with marked content: nothing under either name
    secret = marked_bytes(128 * 1024)
    fd = os.open(held.x / "s.tmp", os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, secret)
    os.rename(held.x / "s.tmp", held.x / "s.doc")
    with pytest.raises(PermissionError):
        os.close(fd)
    assert not (held.real / "s.doc").exists() and not (held.real / "s.tmp").exists()
    assert not os.path.exists(held.x / "s.doc")
    assert_not_on_device(held.dev, [secret])


def test_gateway_truncate(held):
    data = clean_bytes(300 * 1024)
    (held.x / "t.bin").write_bytes(data)
    os.truncate(held.x / "t.bin", 1000)             # truncate(2) of a closed file
    assert (held.real / "t.bin").read_bytes() == data[:1000]
    with open(held.x / "t.bin", "r+b") as f:         # ftruncate of an open one
        f.truncate(10)
        f.seek(0, 2)
        f.write(b"!")
    assert (held.real / "t.bin").read_bytes() == data[:10] + b"!"
    with open(held.x / "t.bin", "wb"):               # O_TRUNC and nothing written
        pass
    assert (held.real / "t.bin").read_bytes() == b""


MMAP_WRITER = r"""
import mmap, os, sys
path, size, data_path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
data = open(data_path, "rb").read()
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
os.ftruncate(fd, size)
mm = mmap.mmap(fd, size)
os.close(fd)                 # flush: the zeros are judged and committed
mm[size - len(data):] = data # written after close, through the mapping
if sys.argv[4] == "msync":
    try:
        mm.flush()           # msync(MS_SYNC) reaches the gateway as fsync: judged now
    except PermissionError:
        print("refused at msync")
mm.close()                   # release: writeback that came after close is judged
"""


def _mmap_write(path: Path, size: int, data: bytes, tmp: Path, msync: bool) -> str:
    # in a process of its own: a page fault on a FUSE mapping in this process would
    # wait for the FUSE thread of this very process while holding the GIL
    src = tmp / f"mm-{path.name}"
    src.write_bytes(data)
    r = run(sys.executable, "-c", MMAP_WRITER, str(path), str(size), str(src), "msync" if msync else "-")
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.mark.parametrize("msync", [False, True], ids=["munmap", "msync"])
def test_gateway_mmap_write_is_judged_at_release(held, tmp_path, msync):
    size = 64 * 1024
    secret = marked_bytes(size - 4096)
    out = _mmap_write(held.x / "m.bin", size, secret, tmp_path, msync)
    assert ("refused at msync" in out) == msync
    held.events.wait("gateway.refused", lambda f: f["path"] == "m.bin")
    assert (held.real / "m.bin").read_bytes() == bytes(size)
    assert_not_on_device(held.dev, [secret])
    clean = clean_bytes(size)
    _mmap_write(held.x / "c.bin", size, clean, tmp_path, msync)
    deadline = time.monotonic() + 10
    while (held.real / "c.bin").read_bytes() != clean and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (held.real / "c.bin").read_bytes() == clean


def test_gateway_many_writers_in_parallel(held):
    results: dict[str, tuple[bytes, bool, bool]] = {}   # name -> (data, marked, close ok)
    lock = threading.Lock()

    def writer(w: int) -> None:
        for i in range(15):
            name = f"w{w}-{i}.bin"
            marked = (i % 5) == 2
            data = marked_bytes(20 * 1024 + i * 1000) if marked else clean_bytes(20 * 1024 + i * 1000)
            ok = True
            try:
                with open(held.x / name, "wb") as f:
                    for k in range(0, len(data), 4096):
                        f.write(data[k:k + 4096])
                        f.flush()
            except PermissionError:
                ok = False
            with lock:
                results[name] = (data, marked, ok)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(results) == 120
    for name, (data, marked, ok) in results.items():
        assert ok == (not marked), name
        if marked:
            assert not (held.real / name).exists()
        else:
            assert (held.real / name).read_bytes() == data, name
    assert_not_on_device(held.dev, [d for d, m, _ in results.values() if m])


def test_gateway_fsync_judges_now(held):
    data = clean_bytes(70 * 1024)
    with open(held.x / "f.bin", "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
        assert (held.real / "f.bin").read_bytes() == data   # before close
    secret = marked_bytes(70 * 1024)
    fd = os.open(held.x / "g.bin", os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, secret)
    with pytest.raises(PermissionError):
        os.fsync(fd)
    with pytest.raises(PermissionError):
        os.close(fd)
    assert not (held.real / "g.bin").exists()
    assert_not_on_device(held.dev, [secret])


def test_gateway_sparse_file(held):
    with open(held.x / "sparse.img", "wb") as f:
        f.seek(20 * 1024 * 1024)
        f.write(b"end")
    with open(held.real / "sparse.img", "rb") as f:
        assert os.fstat(f.fileno()).st_size == 20 * 1024 * 1024 + 3
        f.seek(20 * 1024 * 1024 - 5)
        assert f.read() == bytes(5) + b"end"


def test_gateway_staging_cap_gives_enospc_and_no_partial_file(held_factory, tmp_path):
    h = held_factory("exfat", cap=4 * 1024 * 1024)
    data = clean_bytes(8 * 1024 * 1024)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    r = run("cp", str(src), str(h.x))
    assert r.returncode != 0
    assert "No space left on device" in r.stderr, r.stderr
    assert not (h.real / "big.bin").exists()
    full = h.events.wait("gateway.staging_full")
    assert full["path"] == "big.bin" and full["cap"] == 4 * 1024 * 1024
    # the kernel sends the release of cp's file after close() returned: wait for it
    wait_for(lambda: not [p for p in (h.roots / "staging").iterdir() if p.suffix == ".data"],
             what="the refused staged copy to be removed")
    # below the cap things work again
    (h.x / "small.bin").write_bytes(data[:1024 * 1024])
    assert (h.real / "small.bin").read_bytes() == data[:1024 * 1024]


def test_gateway_directories_and_metadata_pass_through(held_ext4):
    h = held_ext4
    os.mkdir(h.x / "docs")
    (h.x / "docs" / "a.txt").write_text("a")
    os.chmod(h.x / "docs" / "a.txt", 0o600)
    assert (h.real / "docs" / "a.txt").stat().st_mode & 0o777 == 0o600
    os.utime(h.x / "docs" / "a.txt", ns=(1_000_000_000, 2_000_000_000))
    assert (h.real / "docs" / "a.txt").stat().st_mtime_ns == 2_000_000_000
    os.symlink("a.txt", h.x / "docs" / "link")
    assert os.readlink(h.real / "docs" / "link") == "a.txt"
    assert (h.x / "docs" / "link").read_text() == "a"
    os.rename(h.x / "docs", h.x / "papers")
    assert (h.real / "papers" / "a.txt").read_text() == "a"
    os.unlink(h.x / "papers" / "link")
    os.unlink(h.x / "papers" / "a.txt")
    os.rmdir(h.x / "papers")
    assert not (h.real / "papers").exists()
    sv, rv = os.statvfs(h.x), os.statvfs(h.real)
    assert (sv.f_blocks, sv.f_frsize) == (rv.f_blocks, rv.f_frsize)
    with pytest.raises(OSError) as e:
        (h.x / ".baomi-commit-x").write_text("no")
    assert e.value.errno == errno.EPERM


def test_gateway_directory_attributes_are_current_after_mkdir_rmdir_and_chmod(held_ext4):
    """What `find` and permission checks rely on, a folder's link count and mode, change
    at once, also right after files were created in it."""
    h = held_ext4
    os.mkdir(h.x / "top")
    for i in range(3):
        (h.x / "top" / f"f{i}.txt").write_text("clean")   # each create makes the kernel ask for them again
    n = os.stat(h.x / "top").st_nlink
    os.mkdir(h.x / "top" / "sub")
    assert os.stat(h.x / "top").st_nlink == n + 1
    os.rename(h.x / "top" / "sub", h.x / "sub")
    assert os.stat(h.x / "top").st_nlink == n
    os.rmdir(h.x / "sub")
    os.chmod(h.x / "top", 0o750)
    assert os.stat(h.x / "top").st_mode & 0o777 == 0o750


def test_gateway_exclusive_create_of_a_name_already_on_the_medium_fails(held):
    """O_EXCL through the view sees a file that is on the medium but was never looked up
    through the view; a new name is created."""
    (held.real / "there.txt").write_bytes(b"kept")
    with pytest.raises(FileExistsError):
        os.open(held.x / "there.txt", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    fd = os.open(held.x / "new.txt", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, b"clean")
    os.close(fd)
    assert (held.real / "new.txt").read_bytes() == b"clean"
    assert (held.real / "there.txt").read_bytes() == b"kept"


def test_gateway_respects_the_callers_permissions(held_ext4):
    h = held_ext4
    nobody = 65534
    for p in [h.x.parent, *h.x.parent.parents, h.roots]:   # test dirs are 0700: let nobody walk to X
        if str(p).startswith("/tmp/"):
            os.chmod(p, os.stat(p).st_mode | 0o055)
    os.mkdir(h.x / "mine")
    os.chown(h.x / "mine", nobody, nobody)

    def as_nobody(*cmd: str):
        return run("setpriv", f"--reuid={nobody}", f"--regid={nobody}", "--clear-groups", *cmd)

    r = as_nobody("sh", "-c", f"echo hi > {h.x}/root-owned.txt")
    assert r.returncode != 0 and "Permission denied" in r.stderr
    assert not (h.real / "root-owned.txt").exists()
    r = as_nobody("sh", "-c", f"echo hi > {h.x}/mine/ok.txt")
    assert r.returncode == 0, r.stderr
    st = (h.real / "mine" / "ok.txt").stat()
    assert (st.st_uid, st.st_gid) == (nobody, nobody)
    r = as_nobody("ls", str(h.roots / "real"))
    assert r.returncode != 0, "users must not reach the hidden real mount"


def _tree(root: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)


def _rsync(held, *args: str) -> list[str]:
    """rsync's complaints, less those of fusefat (the vfat driver here), which has no
    chmod at all: rsync fails the same way on it without the gateway."""
    r = run("rsync", *args)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    if held.medium.fstype == "vfat":
        return [line for line in lines if "failed to set permissions" not in line
                and "some files/attrs were not transferred" not in line]
    assert (r.returncode == 0) == (not lines), r.stderr
    return lines


def test_gateway_rsync_refuses_the_marked_file_and_leaves_no_temporary_file(held, tmp_path):
    """rsync writes each file under a hidden temporary name, sets its times and renames
    it: the clean ones arrive with their times, the marked one fails at close and its
    temporary file goes with it. (-rt, as for any FAT stick: FAT keeps no modes.)"""
    need_tools("rsync")
    secret = marked_bytes(90 * 1024)
    files = {f"sub/f{i}.txt": clean_bytes(3000 + i * 511) for i in range(6)} | {"sub/机密报告.txt": secret}
    _tree(tmp_path / "src", files)
    os.utime(tmp_path / "src" / "sub" / "f0.txt", (1_600_000_000, 1_600_000_000))
    errors = _rsync(held, "-rt", f"{tmp_path / 'src'}/", f"{held.x / 'r'}/")
    assert len(errors) == 2 and "Permission denied" in errors[0], errors   # and rsync's summary line
    for name, data in files.items():
        if data is not secret:
            assert (held.real / "r" / name).read_bytes() == data
    if held.medium.fstype != "vfat":   # fusefat's rename sets the time to now (the kernel's vfat keeps it)
        assert (held.real / "r" / "sub" / "f0.txt").stat().st_mtime == 1_600_000_000
    assert sorted(os.listdir(held.real / "r" / "sub")) == sorted(n.split("/")[1] for n in files if n != "sub/机密报告.txt")
    assert sorted(os.listdir(held.x / "r" / "sub")) == sorted(os.listdir(held.real / "r" / "sub"))
    held.events.wait("gateway.refused")      # events come from a thread
    [refused] = held.events.named("gateway.refused")
    assert refused["path"].startswith("r/sub/.机密报告.txt."), refused   # rsync's temporary name
    # each clean copy was committed under its temporary name, then renamed: reported
    wait_for(lambda: len(held.events.named("gateway.renamed")) == len(files) - 1, timeout=10)
    renamed = {e["path"]: e for e in held.events.named("gateway.renamed")}
    assert sorted(renamed) == sorted(f"r/{n}" for n in files if n != "sub/机密报告.txt")
    committed = {e["path"]: e["size"] for e in held.events.named("gateway.committed")}
    for path, e in renamed.items():
        assert os.path.basename(e["from"]).startswith("." + os.path.basename(path) + "."), e
        assert committed[e["from"]] == e["size"] == len(files[path[2:]])
    assert_not_on_device(held.dev, [secret])


def test_gateway_rsync_inplace_over_a_clean_file_keeps_it_and_updates_clean_ones(held, tmp_path):
    """--inplace rewrites the file on the medium where it is: marked new content is
    refused whole and the old content stays; a clean change goes through, and so does
    rsync's delta transfer, which reads the old file back through the view."""
    need_tools("rsync")
    old, changed = clean_bytes(200 * 1024), clean_bytes(200 * 1024)
    _tree(tmp_path / "src", {"plan.txt": old, "notes.txt": changed[:150 * 1024]})
    assert _rsync(held, "-rt", f"{tmp_path / 'src'}/", f"{held.x}/") == []
    secret = marked_bytes(210 * 1024)
    (tmp_path / "src" / "plan.txt").write_bytes(secret)
    (tmp_path / "src" / "notes.txt").write_bytes(changed)    # grows: the delta keeps its first 150 KB
    errors = _rsync(held, "-rt", "--inplace", "--no-whole-file", f"{tmp_path / 'src'}/", f"{held.x}/")
    assert len(errors) == 2 and "Permission denied" in errors[0], errors
    assert (held.real / "plan.txt").read_bytes() == old
    assert (held.real / "notes.txt").read_bytes() == changed
    assert _rsync(held, "-rt", "--no-whole-file", f"{tmp_path / 'src' / 'notes.txt'}",
                  f"{held.x}/copy-of-notes.txt") == []
    assert (held.real / "copy-of-notes.txt").read_bytes() == changed
    assert_not_on_device(held.dev, [secret])


def test_gateway_setting_times_of_the_medium_root_keeps_the_medium_mounted(held):
    """Regression: `rsync -rt src/ STICK/` sets the times of the stick's root folder last;
    fusefat's driver died on that and took the medium away. FAT keeps no times for its
    root, so the view accepts them without passing them on."""
    (held.x / "a.txt").write_bytes(b"clean")
    os.utime(held.x, (1_600_000_000, 1_600_000_000))
    assert (held.real / "a.txt").read_bytes() == b"clean"
    assert "a.txt" in os.listdir(held.x)
    if held.medium.fstype != "vfat":
        assert held.real.stat().st_mtime == 1_600_000_000


def test_gateway_listing_has_the_dot_entries_of_the_medium(held):
    """`ls -a` shows what it shows on the stick itself, `.` and `..` included (also at
    the root of a FAT medium, where the kernel's vfat lists them and fusefat does not)."""
    os.mkdir(held.x / "docs")
    (held.x / "docs" / "a.txt").write_text("a")
    for sub in ("", "docs"):
        view = run("ls", "-a", str(held.x / sub)).stdout.split()
        real = run("ls", "-a", str(held.real / sub)).stdout.split()
        assert view[:2] == [".", ".."]
        assert view[2:] == [n for n in real if n not in (".", "..")]
    assert (held.x / "docs" / ".").stat().st_ino == (held.x / "docs").stat().st_ino


def test_gateway_writes_fail_at_open_once_the_medium_turns_read_only(held, tmp_path):
    """Regression: with the real filesystem remounted read-only (ext4's errors=remount-ro,
    an administrator), writes were taken into staging and failed only at close, which
    the shell's `>>` never checks: `echo x >> f` said nothing and wrote nothing."""
    (held.x / "old.txt").write_bytes(b"old\n")
    assert run("mount", "-o", "remount,bind,ro", str(held.real)).returncode == 0
    medium = held.gw.view.media[held.key]
    wait_for(lambda: medium.read_only, timeout=10)
    r = run("sh", "-c", f"echo x >> {held.x / 'old.txt'}")
    assert r.returncode != 0 and "Read-only file system" in r.stderr, r.stderr
    src = tmp_path / "new.txt"
    src.write_bytes(b"new")
    r = run("cp", str(src), str(held.x))
    assert r.returncode != 0 and "cannot create regular file" in r.stderr and "Read-only" in r.stderr, r.stderr
    assert (held.x / "old.txt").read_bytes() == b"old\n"       # reading goes on
    assert run("mount", "-o", "remount,bind,rw", str(held.real)).returncode == 0
    wait_for(lambda: not medium.read_only, timeout=10)
    assert run("sh", "-c", f"echo x >> {held.x / 'old.txt'}").returncode == 0
    assert (held.real / "old.txt").read_bytes() == b"old\nx\n"


def test_gateway_commit_onto_a_full_medium_fails_at_close_and_leaves_nothing(held, tmp_path):
    """Regression: the failed commit was tried again when the kernel released the file,
    so for a moment after cp had failed the medium held a second partial hidden copy."""
    # fusefat says EPERM where a full FAT has no cluster left; the other drivers ENOSPC
    full = {errno.ENOSPC, errno.EPERM} if held.medium.fstype == "vfat" else {errno.ENOSPC}
    with open(held.real / "filler", "wb") as f:    # fill the medium behind the view
        try:
            while True:
                f.write(bytes(1 << 20))
                f.flush()
        except OSError as e:
            assert e.errno in full, e
    data = clean_bytes(8 << 20)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    r = run("cp", str(src), str(held.x))
    assert r.returncode != 0 and "failed to close" in r.stderr, r.stderr
    assert any(os.strerror(e) in r.stderr for e in full), r.stderr
    assert not (held.real / "big.bin").exists(), "a partial file on the medium"
    assert not [n for n in os.listdir(held.real) if n.startswith(".baomi-commit-")]
    lost = held.events.wait("gateway.not_committed")      # when the kernel releases the file
    assert (lost["path"], lost["size"]) == ("big.bin", len(data))
    assert "big.bin" not in os.listdir(held.x)
    os.unlink(held.real / "filler")
    assert run("cp", str(src), str(held.x)).returncode == 0     # room again: the same copy works
    assert (held.real / "big.bin").read_bytes() == data


def test_gateway_renaming_a_file_that_was_not_just_committed_is_not_reported(held):
    (held.real / "old.txt").write_bytes(b"on the medium before")
    os.rename(held.x / "old.txt", held.x / "older.txt")
    (held.x / "new.txt").write_bytes(b"just copied")
    os.mkdir(held.x / "d")
    os.rename(held.x / "new.txt", held.x / "d" / "new.txt")
    os.rename(held.x / "d" / "new.txt", held.x / "d" / "newest.txt")    # followed from name to name
    held.events.wait("gateway.renamed", lambda e: e["path"] == "d/newest.txt")   # events come from a thread
    assert [(e["from"], e["path"]) for e in held.events.named("gateway.renamed")] == \
        [("new.txt", "d/new.txt"), ("d/new.txt", "d/newest.txt")]
