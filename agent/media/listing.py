"""`baomi-agent media list` without the daemon: attached removable media, their class,
level, the gate's decision and their mounts, read from sysfs and the mount table."""
from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

from ..decide.arrival import decide_arrival
from . import registry as registry_mod
from .history import LevelHistory
from .identity import identify
from .mounts import Mount, mounts_of, read_mounts
from .recognise import recognise


def attached_media(config: Any, root: str = "/") -> list[dict[str, Any]]:
    """What `media list` shows without the daemon: attached removable media, class, level, decision, mounts."""
    from .sysfs import removable_media
    cfg = config.media
    key = registry_mod.load_public_key(cfg.registry_public_key) if cfg.registry_public_key else None
    reg = registry_mod.load(cfg.registry, key)
    from .central import kept_document   # the central registry this host last accepted, merged as the daemon does
    reg = registry_mod.merge_central(reg, kept_document(config), datetime.datetime.now(datetime.timezone.utc).date())
    levels = LevelHistory(config.state_dir).all() if Path(config.state_dir).exists() else {}
    try:
        mounts = read_mounts()
    except OSError:
        mounts = []
    hidden = str(config.enforce.gateway_root / "real")
    out = []
    for dev in removable_media(root, cfg.extra_removable):
        c = recognise(identify(dev), reg, levels)
        d = decide_arrival(config.host.class_, c.medium_class, c.ceiling, c.allowed_hosts,
                           False, dev.read_only, config.policy.actions).decision
        out.append({**c.identity, "action": d.action, "rule": d.rule,
                    "forged": c.forged.id if c.forged else None,
                    "usb_interfaces": [i.name for i in dev.usb_interfaces],
                    "mounts": [{"mountpoint": shown_at(m, mounts, hidden), "read_only": m.read_only}
                               for m in mounts_of(mounts, dev.devnum, dev.devnode)],
                    "enforcement": enforcement_mode(mounts_of(mounts, dev.devnum, dev.devnode), hidden)})
    return out


def shown_at(m: Mount, table: list[Mount], hidden_root: str) -> str:
    """A held medium's hidden mount is shown where users reach it: the gateway view's mount
    whose root is that medium's folder of the view."""
    if not m.mountpoint.startswith(hidden_root.rstrip("/") + "/"):
        return m.mountpoint
    name = "/" + m.mountpoint.rstrip("/").rsplit("/", 1)[-1]
    views = [v.mountpoint for v in table if v.fstype == "fuse.baomi-gateway" and v.root == name]
    return views[0] if views else m.mountpoint


def enforcement_mode(device_mounts: list[Mount], hidden_root: str) -> str | None:
    """How files written to the medium are enforced, read off the mount table: "held" when its
    filesystem is mounted only under the gateway's hidden root, "after_write" when users reach
    it directly and writably, None when it is not writable anywhere."""
    writable = [m for m in device_mounts if not m.read_only]
    if not writable:
        return None
    hidden = [m for m in writable if m.mountpoint.startswith(hidden_root.rstrip("/") + "/")]
    return "held" if len(hidden) == len(writable) else "after_write"
