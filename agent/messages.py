"""Messages that agent components exchange on the internal bus (agent/bus.py)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from baomi.common.levels import Level

MediumClass = Literal["registered", "personal"]


@dataclass
class MountedMedium:
    """Published on topic "medium.mounted" when a removable medium is mounted
    (also for media already mounted when the agent starts) and on
    "medium.unmounted" when that mount goes away."""
    key: str                      # stable id of the medium within this agent (e.g. devnode + fs uuid)
    devnode: str                  # /dev/sdb1, /dev/loop3
    mountpoint: Path
    read_only: bool
    medium_class: MediumClass
    level_ceiling: Level | None   # registered media: the record's ceiling; personal: None
    registry_id: str | None = None
    identity: dict[str, Any] = field(default_factory=dict)  # the event's `medium` object
