"""Real removable media for tests: a loop device holding a real ext4, exFAT or vfat filesystem."""
from __future__ import annotations

import os
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from .skips import need_root, need_tools

MKFS = {"ext4": ["mkfs.ext4", "-q", "-F"], "exfat": ["mkfs.exfat"], "vfat": ["mkfs.vfat"]}
LABEL_OPT = {"ext4": "-L", "exfat": "-L", "vfat": "-n"}


def _run(*cmd: str) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()


def _kernel_has(fstype: str) -> bool:
    with open("/proc/filesystems") as f:
        return any(line.split()[-1] == fstype for line in f if line.strip())


class LoopMedium:
    """An image file attached to a loop device with a filesystem on it.

    attach() -> /dev/loopN; mount(path) mounts it (exFAT through exfat-fuse);
    unmount(); detach(). Use as a context manager to always clean up.
    """

    def __init__(self, fstype: str = "ext4", size_mb: int = 64, label: str = "BAOMITEST",
                 workdir: Path | None = None, loop_range: range | None = None):
        need_root()
        need_tools("losetup", MKFS[fstype][0], "mount", "umount")
        if fstype == "exfat":
            need_tools("mount.exfat-fuse")
        if fstype == "vfat" and not _kernel_has("vfat"):
            need_tools("fusefat")   # kernels without the vfat module: the FUSE FAT driver
        self.fstype, self.size_mb, self.label = fstype, size_mb, label
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="baomi-medium-"))
        self.image = self.workdir / f"medium-{uuid.uuid4().hex[:8]}.img"
        self.devnode: str | None = None
        self.mountpoint: Path | None = None
        # a loop number from this range instead of the first free one: a node that only this
        # test uses, so an agent told about it never sees another test's device there, not
        # even after the node was detached (losetup --find hands out the lowest free number)
        self.loop_range = loop_range

    def attach(self) -> str:
        with open(self.image, "wb") as f:
            f.truncate(self.size_mb * 1024 * 1024)
        label_opt = [LABEL_OPT[self.fstype], self.label if self.fstype == "ext4" else self.label[:11]]
        _run(*MKFS[self.fstype], *label_opt, str(self.image))
        if self.loop_range is None:
            self.devnode = _run("losetup", "--find", "--show", str(self.image))
            return self.devnode
        start = os.getpid() % len(self.loop_range)
        for i in range(len(self.loop_range)):
            n = self.loop_range[(start + i) % len(self.loop_range)]
            if self._backing(f"/dev/loop{n}") is not None:
                continue
            if subprocess.run(["losetup", f"/dev/loop{n}", str(self.image)], capture_output=True).returncode == 0:
                self.devnode = f"/dev/loop{n}"
                return self.devnode
        raise RuntimeError(f"no free loop device in loop{self.loop_range[0]}-loop{self.loop_range[-1]}")

    @staticmethod
    def _backing(devnode: str) -> str | None:
        """The file attached to devnode, None when nothing is."""
        try:
            return Path(f"/sys/block/{Path(devnode).name}/loop/backing_file").read_text().strip()
        except OSError:
            return None

    def ours(self) -> bool:
        """devnode still carries this medium's image (not a device someone attached since)."""
        backing = self._backing(self.devnode) if self.devnode else None
        return backing is not None and backing.startswith(str(self.image))

    @property
    def fs_uuid(self) -> str:
        assert self.devnode
        return _run("blkid", "-s", "UUID", "-o", "value", self.devnode)

    def mount(self, mountpoint: Path | None = None, read_only: bool = False) -> Path:
        assert self.devnode, "attach() first"
        self.mountpoint = Path(mountpoint or self.workdir / "mnt")
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        opts = ["-o", "ro"] if read_only else []
        if self.fstype == "exfat":
            _run("mount.exfat-fuse", *opts, self.devnode, str(self.mountpoint))
        elif self.fstype == "vfat" and not _kernel_has("vfat"):
            _run("fusefat", "-o", "ro" if read_only else "rw+", self.devnode, str(self.mountpoint))
        else:
            _run("mount", "-t", self.fstype, *opts, self.devnode, str(self.mountpoint))
        return self.mountpoint

    def unmount(self) -> None:
        if self.mountpoint and os.path.ismount(self.mountpoint):
            for _ in range(50):
                if subprocess.run(["umount", str(self.mountpoint)], capture_output=True).returncode == 0:
                    break
                time.sleep(0.1)
            else:
                subprocess.run(["umount", "-l", str(self.mountpoint)], capture_output=True)

    def detach(self) -> None:
        self.unmount()
        if self.devnode:
            # only while the node still carries our image: detached already (a test pulling
            # the medium), it may carry another test's device by now
            if self.ours():
                subprocess.run(["blockdev", "--setrw", self.devnode], capture_output=True)
            for _ in range(50):  # the kernel may hold the device busy for a moment after umount
                if not self.ours():
                    break
                subprocess.run(["losetup", "-d", self.devnode], capture_output=True)
                if not self.ours():
                    break
                time.sleep(0.1)
            self.devnode = None
        self.image.unlink(missing_ok=True)

    def __enter__(self) -> "LoopMedium":
        self.attach()
        return self

    def __exit__(self, *exc: object) -> None:
        self.detach()
