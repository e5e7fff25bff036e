"""EnforceComponent: enforces the file policy on every writable removable medium the
media component publishes.

Two modes per medium (docs/enforcement.md):
- held: the staging gateway serves the medium's mount point; a written file waits on
  the host until scanned and only clean content is committed (held.py);
- after_write: where the gateway cannot run or is turned off, fanotify reports each
  closed file, which is scanned on the medium and wiped and removed when blocked
  (written.py)."""
from __future__ import annotations

import logging
import os
import resource
import threading
from typing import Any

from baomi.common.events import medium_obj
from ..media.mounts import read_mounts
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
        self.modes: dict[str, str] = {}        # medium key -> "held" / "after_write"
        self.gateway: Any = None
        self.gateway_problem = ""
        self._recovery: threading.Thread | None = None
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
        self._start_gateway(effects)
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

    def _start_gateway(self, effects: Effects) -> None:
        cfg = self.ctx.config.enforce
        if not (cfg.gateway or any(cfg.gateway_for.values())):
            self.gateway_problem = "turned off ([enforce] gateway = false)"
            return
        try:
            from ..gateway import Gateway, available
            ok, why = available()
            if not ok:
                raise RuntimeError(why)
            from .held import HeldFiles
            held = HeldFiles(self.ctx, self.verdicts, effects, self.watched)
            gw = Gateway(self.ctx.config.state_dir / "staging", cfg.staging_max_bytes, held.judge,
                         self._gateway_notice(held), real_root=cfg.gateway_root / "real",
                         view_root=cfg.gateway_root / "view", durable=cfg.gateway_sync,
                         fsync_commits=cfg.gateway_sync)
            gw.start()
        except Exception as exc:  # the gateway is an improvement, never a reason not to enforce
            self.gateway_problem = f"{type(exc).__name__}: {exc}"
            log.warning("staging gateway not available (%s): media are enforced after the write",
                        self.gateway_problem)
            return
        self.gateway = gw
        # After a crash, recover() serves again the media whose real filesystem survived and
        # judges the files staged before it. The judge needs each medium as the media component
        # publishes it (class, ceiling), which happens only once recovery has served it again: so
        # recovery runs beside the other components' start, and the judge waits for the medium.
        self._recovery = threading.Thread(target=self._recover_gateway, args=(gw,), name="baomi-gateway-recovery",
                                          daemon=True)
        self._recovery.start()

    def _recover_gateway(self, gw: Any) -> None:
        try:
            recovery = gw.recover()
        except Exception:
            log.exception("gateway recovery failed")
            return
        for key in recovery.reattached:  # served again after a crash, at the mount point users know
            mp = gw.mountpoint(key)
            if mp and key not in self.ctx.held:
                self._held_again(key, mp)

    def _held_again(self, key: str, mp: str) -> None:
        """A medium the gateway serves again after a restart: the media component shows its
        hidden real mount at mp from now on, and looks at the mount table again (it may have
        looked before this was known)."""
        self.ctx.held[key] = mp
        self.ctx.bus.publish("medium.held", key)

    def _gateway_notice(self, held: Any) -> Any:
        def notice(name: str, fields: dict[str, Any]) -> None:
            if name == "gateway.released":
                self.ctx.held.pop(fields.get("key", ""), None)
            elif name == "gateway.held" and fields.get("key") and fields.get("key") not in self.ctx.held:
                self._held_again(fields["key"], fields.get("mountpoint", ""))   # served again by recover()
            held.notice(name, fields)
        return notice

    def _set_mode(self, medium: MountedMedium, mode: str, why: str = "") -> None:
        self.modes[medium.key] = mode
        self.ctx.status["enforcement"] = dict(self.modes)
        details = {"mode": mode}
        if why:
            details["why"] = why
        self.ctx.record("enforce.mode", severity="info" if mode == "held" else "medium",
                        # key: the name the heartbeat's enforcement map gives the medium
                        medium=medium_obj(medium.identity, str(medium.mountpoint), key=medium.key),
                        details=details)

    def stop(self) -> None:
        self.ctx.stopping.set()
        if self._recovery is not None:
            self._recovery.join(30)  # its judge gives up waiting once stopping is set
        if self.gateway is not None:
            self.gateway.stop()  # finishes pending verdicts and commits, releases the mounts
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
                    return self._readable_root(w.medium.key) or str(w.medium.mountpoint)
        return None

    def _readable_root(self, key: str) -> str | None:
        """Where the agent reads a medium itself: a held medium's real filesystem, never the
        gateway's view (the process serving a FUSE filesystem must not enter it)."""
        return self.gateway.real_path(key) if self.gateway is not None else None

    def on_mounted(self, medium: MountedMedium) -> None:
        mp = str(medium.mountpoint)
        with self._lock:
            old = self.watched.get(medium.key)
            if old is not None and not old.gone and str(old.medium.mountpoint) == mp:
                return
            self.watched[medium.key] = Watched(medium, os.stat(mp).st_dev)
        if not medium.read_only and not self._hold(medium):
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
            run = InventoryRun(self.ctx, medium, root=self._readable_root(medium.key))
            self.inventories[medium.key] = run
            run.walk(lambda p: self.pipeline.submit(
                Item(medium_key=medium.key, priority=INVENTORY, path=p, run=run)), self.ctx.stopping)

    def _hold(self, medium: MountedMedium) -> bool:
        """Serve the medium through the gateway when its policy can block a file; False = after-write."""
        cfg = self.ctx.config
        if not cfg.enforce.gateway_on(cfg.host.class_, medium.medium_class):
            self._set_mode(medium, "after_write", "turned off for this host and medium class")
            return False
        if self.gateway is None:
            self._set_mode(medium, "after_write", f"gateway not available: {self.gateway_problem}")
            return False
        if self.gateway.mode(medium.key) == "held":  # already held (served again after a restart)
            self._set_mode(medium, "held")
            return True
        self.ctx.held[medium.key] = str(medium.mountpoint)  # before the take-over: see media/mounts.py
        try:
            self.gateway.attach(medium.key, medium.mountpoint, (medium.identity or {}).get("fs_uuid") or "")
        except Exception as exc:
            self.ctx.held.pop(medium.key, None)
            log.warning("gateway cannot hold %s (%s): enforcing after the write", medium.mountpoint, exc)
            self._set_mode(medium, "after_write", str(exc))
            return False
        self._set_mode(medium, "held")
        return True

    def on_unmounted(self, medium: MountedMedium) -> None:
        with self._lock:
            w = self.watched.get(medium.key)
            if w is None:
                return
            w.gone = True
        self.modes.pop(medium.key, None)
        self.ctx.status["enforcement"] = dict(self.modes)
        if self.gateway is not None and self.gateway.mode(medium.key) == "held":
            if self._real_mount_gone(medium.key):
                # yanked, or its real filesystem unmounted under the gateway: the gateway's own
                # mount watcher drops what is staged and names it (gateway.not_committed). A
                # detach here would treat it as an eject instead: wait for the writers and
                # commit into a filesystem that is no longer there, and name nothing.
                log.info("%s: real filesystem gone, left to the gateway", medium.mountpoint)
            else:
                self.gateway.detach(medium.key)
                self.ctx.held.pop(medium.key, None)
        self.watcher.remove(medium.key)

    def _real_mount_gone(self, key: str) -> bool:
        real = self.gateway.real_path(key)
        if not real:
            return False
        try:
            return not any(m.mountpoint == real for m in read_mounts())
        except OSError:
            return False
