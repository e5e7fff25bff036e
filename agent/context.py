"""What every running agent component is handed: config, identity, spool, bus."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from .bus import Bus
from .config import AgentConfig
from .agent_key import Identity, load_or_create
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

    @property
    def host(self) -> dict[str, Any]:
        return {"id": self.identity.agent_id, "name": self.config.host.name,
                "class": self.config.host.class_}

    def record(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Commit an event to the spool (durably) and return it as stored."""
        fields.setdefault("host", self.host)
        return self.spool.record(kind, **fields)


def open_context(config: AgentConfig) -> AgentContext:
    state = config.state_dir
    state.mkdir(parents=True, exist_ok=True)
    identity = load_or_create(state)
    ctx_host = {"id": identity.agent_id, "name": config.host.name, "class": config.host.class_}
    return AgentContext(config, identity, open_spool(state, identity.agent_id, ctx_host, config.spool.max_bytes))
