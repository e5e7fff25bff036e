"""Sources of "a file was closed after writing on this medium".

FanotifyWatcher (root): one fanotify group with a mount mark per medium; each
event carries the writer's pid and an open descriptor of the file. Works on
block filesystems and FUSE (exfat-fuse) alike, with no per-folder watches, so
a `cp -r` into new folders misses nothing.

InotifyWatcher (fallback without CAP_SYS_ADMIN): watchdog's inotify observer,
IN_CLOSE_WRITE per file; the writer is then taken to be the file's owner.
"""
from __future__ import annotations

import logging
import os
import select
import threading
from typing import Callable

from .fanotify import Fanotify
from .pipeline import Item
from ..procinfo import ProcessCache

log = logging.getLogger(__name__)

Submit = Callable[[Item], None]


class FanotifyWatcher:
    mechanism = "fanotify"

    def __init__(self, submit: Submit, stopping: threading.Event):
        self.fan = Fanotify()
        self.submit = submit
        self.stopping = stopping
        self.by_dev: dict[int, str] = {}   # st_dev of a watched mount -> medium key
        self.paths: dict[str, str] = {}    # medium key -> mountpoint
        self.writers = ProcessCache()
        self.overflows = 0
        self._thread = threading.Thread(target=self._run, name="baomi-fanotify", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def add(self, key: str, mountpoint: str) -> None:
        dev = os.stat(mountpoint).st_dev
        self.fan.add_mount(mountpoint)
        self.by_dev[dev] = key
        self.paths[key] = mountpoint

    def ignore(self, path: str) -> None:
        """The agent is about to write `path` itself (wiping a blocked file): not a copy."""
        try:
            self.fan.ignore(path)
        except OSError as exc:
            log.warning("cannot exclude the agent's own write to %s: %s", path, exc)

    def remove(self, key: str) -> None:
        mp = self.paths.pop(key, None)
        for dev, k in list(self.by_dev.items()):
            if k == key:
                del self.by_dev[dev]
        if mp:
            self.fan.remove_mount(mp)

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self.fan.fd, select.POLLIN)
        while not self.stopping.is_set():
            if not poller.poll(200):
                continue
            try:
                events = self.fan.read()
            except OSError as exc:
                log.warning("fanotify read failed: %s", exc)
                continue
            for ev in events:
                if ev.overflow:
                    self.overflows += 1
                    log.error("fanotify queue overflow: some writes were not seen")
                    continue
                key = None
                try:
                    key = self.by_dev.get(os.fstat(ev.fd).st_dev)
                except OSError:
                    pass
                if key is None:
                    os.close(ev.fd)
                    continue
                self.submit(Item(medium_key=key, fd=ev.fd, writer=self.writers.get(ev.pid)))

    def stop(self) -> None:
        self._thread.join(timeout=2)
        self.fan.close()


class InotifyWatcher:
    mechanism = "inotify"

    def __init__(self, submit: Submit, stopping: threading.Event):
        from watchdog.observers.inotify import InotifyObserver
        self.submit = submit
        self.observer = InotifyObserver()
        self.watches: dict[str, object] = {}

    def start(self) -> None:
        self.observer.start()

    def add(self, key: str, mountpoint: str) -> None:
        from watchdog.events import FileClosedEvent, FileSystemEventHandler
        submit = self.submit

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: object) -> None:
                if isinstance(event, FileClosedEvent):
                    try:
                        fd = os.open(os.fsdecode(event.src_path), os.O_RDONLY | os.O_NOFOLLOW)
                    except OSError:
                        return  # gone already
                    submit(Item(medium_key=key, fd=fd))

        self.watches[key] = self.observer.schedule(Handler(), mountpoint, recursive=True)

    def ignore(self, path: str) -> None:
        pass  # the wiped file is unlinked at once: its close event finds nothing to open

    def remove(self, key: str) -> None:
        watch = self.watches.pop(key, None)
        if watch is not None:
            try:
                self.observer.unschedule(watch)
            except Exception:
                pass

    def stop(self) -> None:
        self.observer.stop()
        self.observer.join(timeout=5)


def make_watcher(submit: Submit, stopping: threading.Event) -> FanotifyWatcher | InotifyWatcher:
    try:
        return FanotifyWatcher(submit, stopping)
    except OSError as exc:
        log.warning("fanotify unavailable (%s); watching media with inotify", exc)
        return InotifyWatcher(submit, stopping)
