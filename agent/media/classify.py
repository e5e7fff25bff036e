"""Bind a medium to its registration and decide the gate: registry + level history →
the pure policy decision (baomi.common.policy.device_action)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from baomi.common.levels import Level
from baomi.common.policy import Decision, device_action
from .registry import Record, Registry


@dataclass
class Classified:
    identity: dict[str, Any]      # with registry_id, class, level filled in
    record: Record | None         # the verified registration, if any
    forged: Record | None         # a record that binds to it but whose signature failed
    ceiling: Level | None
    decision: Decision


def classify(identity: dict[str, Any], registry: Registry, history_level: Mapping[str, Level],
             host_class: str, overrides: Mapping[str, str]) -> Classified:
    record, forged = registry.lookup(identity)
    identity = dict(identity)
    if record is not None:
        ceiling = max(record.level, history_level.get(record.id, record.level))
        identity.update(registry_id=record.id, level=ceiling.id, owner=record.owner)
        identity["class"] = "registered"
        decision = device_action(host_class, "registered", ceiling, record.hosts, overrides)
    else:
        ceiling = None
        identity.update(registry_id=None, level=None)
        identity["class"] = "personal"
        decision = device_action(host_class, "personal", None, None, overrides)
    return Classified(identity, record, forged, ceiling, decision)
