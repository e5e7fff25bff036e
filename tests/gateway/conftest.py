"""A held medium for each test: a real loop device with a real filesystem, mounted
at a user mount point, taken over by a gateway running in this process."""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from baomi.agent.gateway import available
from tests.support.media import LoopMedium
from tests.support.skips import need_root, need_tools

from .support import Events, is_mount, judge

FSTYPES = ["exfat", "vfat", "ext4"]
REPO_ROOT = Path(__file__).resolve().parents[2]


def need_gateway() -> None:
    need_root()
    if not os.path.exists("/dev/fuse"):
        pytest.skip("needs /dev/fuse")
    ok, why = available()
    if not ok:
        pytest.skip(f"gateway unavailable: {why}")
    need_tools("losetup", "blockdev", "cp")


@dataclass
class Held:
    medium: LoopMedium
    gw: object
    events: Events
    x: Path            # the user's mount point (the FUSE view)
    real: Path         # the hidden real mount
    key: str
    roots: Path

    @property
    def dev(self) -> str:
        return self.medium.devnode


def make_gateway(roots: Path, events: Events, cap: int = 1 << 30, judge_fn=judge, **kw):
    from baomi.agent.gateway.gateway import Gateway
    return Gateway(roots / "staging", cap, judge_fn, events, real_root=roots / "real",
                   view_root=roots / "view", **kw)


def cleanup_roots(roots: Path) -> None:
    for p in (roots / "view", roots / "real"):
        while is_mount(p):
            if subprocess.run(["umount", "-l", str(p)], capture_output=True).returncode != 0:
                break


@pytest.fixture
def held_factory(tmp_path: Path):
    """held_factory(fstype, size_mb=64, cap=..., judge_fn=...) -> Held; all cleaned up after."""
    need_gateway()
    made: list[Held] = []

    def factory(fstype: str = "ext4", size_mb: int = 64, **kw) -> Held:
        roots = tmp_path / f"gw{len(made)}"
        roots.mkdir()
        (tmp_path / f"medium{len(made)}").mkdir()
        medium = LoopMedium(fstype, size_mb=size_mb, workdir=tmp_path / f"medium{len(made)}")
        medium.attach()
        x = medium.mount(tmp_path / f"usb{len(made)}")
        events = Events()
        gw = make_gateway(roots, events, **kw)
        gw.start()
        h = Held(medium, gw, events, x, roots / "real" / "m1", "m1", roots)
        made.append(h)
        gw.attach("m1", x, fs_uuid=medium.fs_uuid)
        return h

    yield factory
    for h in made:
        try:
            h.gw.stop()
        finally:
            cleanup_roots(h.roots)
            h.medium.detach()


@pytest.fixture(params=FSTYPES)
def held(request, held_factory) -> Held:
    return held_factory(request.param)


@pytest.fixture
def held_ext4(held_factory) -> Held:
    return held_factory("ext4")


def remount_direct(h: Held, where: Path) -> Path:
    """After the gateway released a medium: mount it again directly to inspect it."""
    return h.medium.mount(where)
