"""What every running agent component is handed: config, identity, spool, bus."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from .agent_key import Identity, load_or_create
from .bus import Bus
from .config import AgentConfig
from .spool import Spool, open_spool


@dataclass
class AgentContext:
    config: AgentConfig
    identity: Identity
    spool: Spool
    bus: Bus = field(default_factory=Bus)
    stopping: threading.Event = field(default_factory=threading.Event)
    # Desktop notification channels, tried in order: fn(uid, summary, body, urgency) -> delivered?
    # The screen-lock component adds its per-session helper channel here when it starts.
    notifiers: list[Callable[[int, str, str, str], bool]] = field(default_factory=list)
    # media the staging gateway holds: medium key -> the mount point users reach it at
    # (written by enforcement before it takes a medium over, read by the media component)
    held: dict[str, str] = field(default_factory=dict)
    # what components report in the heartbeat, e.g. {"enforcement": {medium key: "held"}}
    status: dict[str, Any] = field(default_factory=dict)
    # the central policy (agent/central.py), made by daemon.run before the components start
    central: Any = None

    @property
    def host(self) -> dict[str, Any]:
        return host_of(self.config, self.identity)

    def record(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Commit an event to the spool (durably) and return it as stored."""
        return self.spool.record(kind, **fields)


def host_of(config: AgentConfig, identity: Identity) -> dict[str, Any]:
    return {"id": identity.agent_id, "name": config.host.name, "class": config.host.class_}


def open_context(config: AgentConfig) -> AgentContext:
    from baomi.common.fsutil import private_dir
    state = private_dir(config.state_dir)
    identity = load_or_create(state)
    spool = open_spool(state, identity.agent_id, host_of(config, identity), config.spool.max_bytes,
                       config.spool.overflow_events)
    return AgentContext(config, identity, spool)
