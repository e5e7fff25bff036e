"""Recognise a medium: bind it to its registration (if a verified record matches) and
work out its level ceiling from the record and the level history. Facts only; the gate
decision is decide/arrival.py."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from baomi.common.levels import Level
from .registry import Record, Registry


@dataclass
class Recognised:
    identity: dict[str, Any]      # with registry_id, class, level filled in
    record: Record | None         # the verified registration, if any
    forged: Record | None         # a record that binds to it but whose signature failed
    ceiling: Level | None

    @property
    def medium_class(self) -> str:
        return self.identity["class"]

    @property
    def allowed_hosts(self) -> list[str] | None:
        return self.record.hosts if self.record is not None else None


def recognise(identity: dict[str, Any], registry: Registry, history_level: Mapping[str, Level]) -> Recognised:
    record, forged = registry.lookup(identity)
    identity = dict(identity)
    if record is not None:
        ceiling = max(record.level, history_level.get(record.id, record.level))
        identity.update(registry_id=record.id, level=ceiling.id, owner=record.owner)
        identity["class"] = "registered"
    else:
        ceiling = None
        identity.update(registry_id=None, level=None)
        identity["class"] = "personal"
    return Recognised(identity, record, forged, ceiling)
