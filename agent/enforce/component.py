"""EnforceComponent: watches every writable removable medium the media
component publishes, and enforces the file policy on what is written to it."""
from __future__ import annotations

import logging
import os
import resource
import threading
from pathlib import Path
from typing import Any, Mapping

from baomi.common.levels import Level
from ..model import MountedMedium
from ..quarantine import Quarantine, QuarantineError, load_public_key
from .block import Blocker
from .inventory import InventoryRun
from .journal import Journal
from .pipeline import INVENTORY, Item, Pipeline, Watched
from .watcher import make_watcher
from .writer import Writer

log = logging.getLogger(__name__)


# enforcement (its threads and scanning processes) runs below the user's own work: a
# `cp -r` to the medium keeps its speed and the checks use the CPU it leaves
DEFAULT_NICE = 5
NICE_VARIABLE = "BAOMI_ENFORCE_NICE"


def enforce_nice(environ: Mapping[str, str] = os.environ) -> int:
    """The nice value from BAOMI_ENFORCE_NICE (default 5); ValueError naming it when bad."""
    raw = environ.get(NICE_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_NICE
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not -20 <= value <= 19:
        raise ValueError(f"{NICE_VARIABLE} must be a whole number from -20 to 19, not {raw[:20]!r}")
    return value


def make_scanner(config: Any, nice: int = DEFAULT_NICE) -> Any:
    from ..scan.engine import Scanner
    return Scanner(config, nice=nice)  # rules: RuleSet.for_config(config)


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
        self._lock = threading.Lock()

    # -- lifecycle --------------------------------------------------------------
    def start(self) -> None:
        cfg = self.ctx.config
        _raise_fd_limit()
        try:
            nice = enforce_nice()
        except ValueError as exc:  # enforcement still runs, at the default priority
            log.error("%s; using %d", exc, DEFAULT_NICE)
            self.ctx.record("agent.config_problem", severity="high",
                            details={"section": "environment", "key": NICE_VARIABLE, "error": str(exc)})
            nice = DEFAULT_NICE
        if self._scanner is None:
            self._scanner = make_scanner(cfg, nice)
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
        self.journal = Journal(qroot / "journal")
        self.blocker = Blocker(self.ctx, self.quarantine, self.journal)
        self.pipeline = Pipeline(self.ctx, self._scanner, self.blocker,
                                 workers=max(2, min(4, cfg.scan.jobs * 2)),
                                 notify=self._notify, raise_level=self._raise_level,
                                 nice=nice)
        self.watcher = make_watcher(self.pipeline.submit, self.ctx.stopping)
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
            for w in self.pipeline.watched.values():
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
            old = self.pipeline.watched.get(medium.key)
            if old is not None and not old.gone and str(old.medium.mountpoint) == mp:
                return
            self.pipeline.watched[medium.key] = Watched(medium, os.stat(mp).st_dev)
        if not medium.read_only:
            try:
                self.watcher.add(medium.key, mp)
            except OSError as exc:
                self.ctx.record("enforce.watch_failed", severity="high",
                                medium=dict(medium.identity, mountpoint=mp),
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
            w = self.pipeline.watched.get(medium.key)
            if w is None:
                return
            w.gone = True
        self.watcher.remove(medium.key)

    # -- effects ------------------------------------------------------------------
    def _raise_level(self, medium_id: str, level: Level) -> None:
        try:
            from ..media.history import LevelHistory
        except ImportError:
            return
        try:
            LevelHistory(self.ctx.config.state_dir).raise_to(medium_id, level)
        except Exception as exc:
            log.warning("could not raise the level of medium %s: %s", medium_id, exc)

    def _notify(self, writer: Writer, decision: Any, verdict: Any, name: str) -> None:
        from .. import notify
        lang = notify.user_lang(writer.uid, writer.lang) if writer.uid is not None else None
        key = decision.action if verdict.inspectable else f"{decision.action}_uninspectable"
        summary, body = notify.render(key, lang, name=name, level_zh=verdict.level.zh,
                                      level_en=verdict.level.en, reason=decision.reason,
                                      why=verdict.reason or "")
        notify.deliver_async(writer.uid, summary, body,
                             "critical" if decision.action == "block" else "normal", self.ctx.notifiers)
