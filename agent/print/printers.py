"""The printer registry: printers registered with a level ceiling (涉密打印机).

For now the records come from agent.toml (`[[print.printer]]`); each has the shape of
an entry of the signed central registry (id, level, hosts, binding: queue name or
device URI), so the registry can be fed from there without touching the decisions."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from baomi.common.levels import Level
from .cups import unwrap


@dataclass(frozen=True)
class RegisteredPrinter:
    id: str
    level: Level
    queue: str = ""
    uri: str = ""
    hosts: tuple[str, ...] = ("classified", "unclassified")

    def binds(self, queue: str, uri: str) -> bool:
        """A record names its queue, its device, or both (then both must match)."""
        return (not self.queue or self.queue == queue) and (not self.uri or self.uri == unwrap(uri))


class PrinterRegistry:
    def __init__(self, records: Iterable[RegisteredPrinter] = ()):
        self.records = list(records)

    @classmethod
    def from_config(cls, entries: Iterable[Any]) -> "PrinterRegistry":
        return cls(RegisteredPrinter(e.id, Level.parse(e.level), e.queue, e.uri, tuple(e.hosts)) for e in entries)

    def lookup(self, queue: str, uri: str, host_class: str) -> RegisteredPrinter | None:
        """The registration of this printer that holds on this host class, if any."""
        return next((r for r in self.records if r.binds(queue, uri) and host_class in r.hosts), None)


def printer_obj(queue: str, uri: str, make_model: str, record: RegisteredPrinter | None) -> dict[str, Any]:
    """details.printer of a print event."""
    return {"name": queue, "uri": unwrap(uri), "make_model": make_model,
            "registry_id": record.id if record else None,
            "class": "registered" if record else "unregistered",
            "level": record.level.id if record else None}
