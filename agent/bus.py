"""A small in-process publish/subscribe bus between agent components.

Sources publish, consumers subscribe; a subscriber's exception is logged and
never stops delivery to the others.
"""
from __future__ import annotations

import logging
import threading
from collections import defaultdict
from typing import Any, Callable

log = logging.getLogger(__name__)


class Bus:
    def __init__(self) -> None:
        self._subs: dict[str, list[Callable[[Any], None]]] = defaultdict(list)
        self._lock = threading.Lock()

    def subscribe(self, topic: str, fn: Callable[[Any], None]) -> None:
        with self._lock:
            self._subs[topic].append(fn)

    def publish(self, topic: str, payload: Any) -> None:
        with self._lock:
            subs = list(self._subs.get(topic, ()))
        for fn in subs:
            try:
                fn(payload)
            except Exception:
                log.exception("subscriber %r failed on %s", fn, topic)
