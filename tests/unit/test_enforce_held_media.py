"""EnforceComponent's part in a held medium's life, with a stand-in gateway: what it
asks of the gateway when the media component reports the medium's mount gone."""
from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from baomi.agent.enforce import component as comp_mod
from baomi.agent.enforce.component import EnforceComponent
from baomi.agent.enforce.written import Watched
from baomi.agent.media.mounts import parse_mountinfo
from baomi.agent.messages import MountedMedium

REAL = "/run/baomi/gateway/real/loop5-abc"


class FakeGateway:
    def __init__(self) -> None:
        self.detached: list[str] = []

    def mode(self, key: str) -> str:
        return "none" if key in self.detached else "held"

    def real_path(self, key: str) -> str:
        return REAL

    def detach(self, key: str) -> None:
        self.detached.append(key)


def _component() -> tuple[EnforceComponent, FakeGateway, MountedMedium]:
    ctx = SimpleNamespace(held={}, status={}, stopping=threading.Event())
    comp = EnforceComponent(ctx)
    comp.gateway = FakeGateway()
    comp.watcher = SimpleNamespace(remove=lambda key: None)
    medium = MountedMedium(key="loop5-abc", devnode="/dev/loop5", mountpoint=Path("/media/zhang/STICK"),
                           read_only=False, medium_class="personal", level_ceiling=None)
    comp.watched[medium.key] = Watched(medium, 0)
    ctx.held[medium.key] = str(medium.mountpoint)
    return comp, comp.gateway, medium


def _mounts(*points: str) -> list:
    return parse_mountinfo("".join(f"{30 + i} 22 7:5 / {p} rw,relatime - exfat /dev/loop5 rw\n"
                                   for i, p in enumerate(points)))


def test_yanked_held_medium_is_left_to_the_gateway_not_detached(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bug: the media component saw the real filesystem's mount vanish (medium pulled,
    or unmounted under the gateway) before the gateway did, and enforcement called
    gateway.detach(): an orderly eject, which waits for the writers and commits into the
    detached filesystem, so the gateway never reported the staged file as not committed."""
    comp, gw, medium = _component()
    monkeypatch.setattr(comp_mod, "read_mounts", lambda: _mounts("/"))   # the hidden mount is gone
    comp.on_unmounted(medium)
    assert gw.detached == []
    assert comp.watched[medium.key].gone


def test_held_medium_whose_real_mount_is_still_there_is_detached(monkeypatch: pytest.MonkeyPatch) -> None:
    comp, gw, medium = _component()
    monkeypatch.setattr(comp_mod, "read_mounts", lambda: _mounts("/", REAL))
    comp.on_unmounted(medium)
    assert gw.detached == [medium.key]
    assert medium.key not in comp.ctx.held
