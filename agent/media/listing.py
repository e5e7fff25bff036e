"""`baomi-agent media list` without the daemon: attached removable media, their class,
level, the gate's decision and their mounts, read from sysfs and the mount table."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..decide.arrival import decide_arrival
from . import registry as registry_mod
from .history import LevelHistory
from .identity import identify
from .mounts import mounts_of, read_mounts
from .recognise import recognise


def attached_media(config: Any, root: str = "/") -> list[dict[str, Any]]:
    """What `media list` shows without the daemon: attached removable media, class, level, decision, mounts."""
    from .sysfs import removable_media
    cfg = config.media
    key = registry_mod.load_public_key(cfg.registry_public_key) if cfg.registry_public_key else None
    reg = registry_mod.load(cfg.registry, key)
    levels = LevelHistory(config.state_dir).all() if Path(config.state_dir).exists() else {}
    try:
        mounts = read_mounts()
    except OSError:
        mounts = []
    out = []
    for dev in removable_media(root, cfg.extra_removable):
        c = recognise(identify(dev), reg, levels)
        d = decide_arrival(config.host.class_, c.medium_class, c.ceiling, c.allowed_hosts,
                           False, dev.read_only, config.policy.actions).decision
        out.append({**c.identity, "action": d.action, "rule": d.rule,
                    "forged": c.forged.id if c.forged else None,
                    "usb_interfaces": [i.name for i in dev.usb_interfaces],
                    "mounts": [{"mountpoint": m.mountpoint, "read_only": m.read_only}
                               for m in mounts_of(mounts, dev.devnum, dev.devnode)]})
    return out
