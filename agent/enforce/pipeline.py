"""The work queue between watchers and handlers: writes first, inventory after.

Items arrive from the watcher holding an open descriptor of the written file.
Holding it keeps the medium busy, so a clean eject waits for the verdict, and
lets the agent read a file that was renamed or deleted right after the write.
A few worker threads take items in priority order and hand each to the
handler for its kind; the descriptor is closed when the handler returns.
"""
from __future__ import annotations

import itertools
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ..procinfo import ProcessInfo

log = logging.getLogger(__name__)

WRITE, INVENTORY = 0, 1


@dataclass
class Item:
    medium_key: str
    priority: int = WRITE
    fd: int | None = None            # writes: the descriptor from fanotify (or opened by inotify)
    path: str | None = None          # inventory: the file to open
    writer: ProcessInfo | None = None
    received: float = field(default_factory=time.monotonic)
    run: Any = None                  # inventory: the InventoryRun it belongs to


class Pipeline:
    def __init__(self, handlers: dict[int, Callable[[Item], None]], workers: int = 2, nice: int = 0):
        self.handlers = handlers
        self.nice = nice
        self._q: queue.PriorityQueue = queue.PriorityQueue()
        self._counter = itertools.count()
        self._inflight = 0
        self._cv = threading.Condition()
        self._threads = [threading.Thread(target=self._work, name=f"baomi-enforce-{i}", daemon=True)
                         for i in range(workers)]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        for _ in self._threads:
            self._q.put((99, next(self._counter), None))
        for t in self._threads:
            t.join(timeout=10)

    def submit(self, item: Item) -> None:
        with self._cv:
            self._inflight += 1
        self._q.put((item.priority, next(self._counter), item))

    def pending(self) -> int:
        with self._cv:
            return self._inflight

    def wait_idle(self, timeout: float = 60.0) -> bool:
        end = time.monotonic() + timeout
        with self._cv:
            while self._inflight:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cv.wait(left)
        return True

    def _work(self) -> None:
        try:
            # the user's copy comes first; enforcement uses what CPU is left (Linux: per thread)
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self.nice)
        except OSError as exc:
            log.warning("enforcement thread priority %d refused: %s", self.nice, exc)
        while True:
            _, _, item = self._q.get()
            if item is None:
                return
            try:
                self.handlers[item.priority](item)
            except Exception:
                log.exception("enforcement of a file on %s failed", item.medium_key)
            finally:
                if item.fd is not None:
                    try:
                        os.close(item.fd)  # releases the medium for eject
                    except OSError:
                        pass
                with self._cv:
                    self._inflight -= 1
                    self._cv.notify_all()
