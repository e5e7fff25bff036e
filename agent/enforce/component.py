"""EnforceComponent: watches every writable removable medium the media
component publishes, and enforces the file policy on what is written to it."""
from __future__ import annotations

import logging
import os
import resource
import threading
from typing import Any

from baomi.common.events import medium_obj
from ..messages import MountedMedium
from ..quarantine import Quarantine, QuarantineError, load_public_key
from .block import Blocker
from .effects import Effects
from .inventory import AtRestFiles, InventoryRun
from .journal import Journal
from .pipeline import INVENTORY, WRITE, Item, Pipeline
from .verdicts import Verdicts
from .watcher import make_watcher
from .written import Watched, WrittenFiles

log = logging.getLogger(__name__)


def make_scanner(config: Any, nice: int | None = None) -> Any:
    from ..scan.engine import Scanner
    return Scanner(config, nice=config.enforce.nice if nice is None else nice)  # rules: RuleSet.for_config


def _raise_fd_limit() -> None:
    # each file waiting for its verdict holds a descriptor (that is what keeps the medium busy)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(target, 1 << 20), hard))


class EnforceComponent:
    name = "enforce"

    def __init__(self, ctx: Any, scanner: Any = None, inventory: bool = True):
        self.ctx = ctx
        self._scanner = scanner
        self._own_scanner = scanner is None
        self.inventory_enabled = inventory
        self.inventories: dict[str, InventoryRun] = {}
        self.watched: dict[str, Watched] = {}
        self._lock = threading.Lock()

    # -- lifecycle --------------------------------------------------------------
    def start(self) -> None:
        cfg = self.ctx.config
        _raise_fd_limit()
        if self._scanner is None:
            self._scanner = make_scanner(cfg)
        public = None
        if cfg.quarantine.public_key is not None:
            try:
                public = load_public_key(cfg.quarantine.public_key)
            except QuarantineError as exc:
                log.error("%s", exc)
                self.ctx.record("agent.config_problem", severity="high",
                                details={"section": "quarantine", "key": "public_key", "error": str(exc)})
        else:
            log.warning("[quarantine] public_key not set: blocked files are removed but their content is not kept")
        qroot = cfg.state_dir / "quarantine"
        self.quarantine = Quarantine(qroot, public, cfg.quarantine.max_bytes)
        self.blocker = Blocker(self.ctx, self.quarantine, Journal(qroot / "journal"))
        self.verdicts = Verdicts(self._scanner)
        effects = Effects(self.ctx, self.blocker)
        written = WrittenFiles(self.ctx, self.verdicts, effects, self.watched)
        at_rest = AtRestFiles(self.ctx, self.verdicts, effects, self.watched)
        self.pipeline = Pipeline({WRITE: written.handle, INVENTORY: at_rest.handle},
                                 workers=cfg.enforce.worker_count(cfg.scan.jobs), nice=cfg.enforce.nice)
        self.watcher = make_watcher(self.pipeline.submit, self.ctx.stopping)
        self.blocker.before_wipe = self.watcher.ignore
        self.pipeline.start()
        self.watcher.start()
        self.blocker.recover(self._find_mount)  # finish what a crash interrupted
        self.ctx.bus.subscribe("medium.mounted", self.on_mounted)
        self.ctx.bus.subscribe("medium.unmounted", self.on_unmounted)
        log.info("copy enforcement started (%s)", self.watcher.mechanism)

    def stop(self) -> None:
        self.ctx.stopping.set()
        self.watcher.stop()
        self.pipeline.stop()
        if self._own_scanner and hasattr(self._scanner, "close"):
            self._scanner.close()

    # -- media -------------------------------------------------------------------
    def _find_mount(self, rec: dict[str, Any]) -> str | None:
        with self._lock:
            for w in self.watched.values():
                if w.gone or w.medium.read_only:
                    continue
                ident = w.medium.identity or {}
                if w.medium.key == rec.get("medium_key") or (
                        rec.get("fs_uuid") and ident.get("fs_uuid") == rec.get("fs_uuid")):
                    return str(w.medium.mountpoint)
        return None

    def on_mounted(self, medium: MountedMedium) -> None:
        mp = str(medium.mountpoint)
        with self._lock:
            old = self.watched.get(medium.key)
            if old is not None and not old.gone and str(old.medium.mountpoint) == mp:
                return
            self.watched[medium.key] = Watched(medium, os.stat(mp).st_dev)
        if not medium.read_only:
            try:
                self.watcher.add(medium.key, mp)
            except OSError as exc:
                self.ctx.record("enforce.watch_failed", severity="high",
                                medium=medium_obj(medium.identity, mp),
                                details={"error": str(exc), "mechanism": self.watcher.mechanism})
                return
        # off the publisher's thread: finishing interrupted blocks and the inventory take a while
        threading.Thread(target=self._after_mount, args=(medium,), name="baomi-inventory", daemon=True).start()

    def _after_mount(self, medium: MountedMedium) -> None:
        self.blocker.recover(self._find_mount)  # blocks a crash interrupted, on this medium
        if self.inventory_enabled:
            run = InventoryRun(self.ctx, medium)
            self.inventories[medium.key] = run
            run.walk(lambda p: self.pipeline.submit(
                Item(medium_key=medium.key, priority=INVENTORY, path=p, run=run)), self.ctx.stopping)

    def on_unmounted(self, medium: MountedMedium) -> None:
        with self._lock:
            w = self.watched.get(medium.key)
            if w is None:
                return
            w.gone = True
        self.watcher.remove(medium.key)
