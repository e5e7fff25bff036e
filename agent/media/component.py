"""MediaComponent: detect, identify, register and gate every removable medium.

Sources (uevents, the mount table, a periodic re-enumeration) only put items on
one queue; a single worker thread owns all state, so events for one device are
handled in order and a burst cannot race with itself.
"""
from __future__ import annotations

import datetime
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from baomi.common.tomlconf import ConfigError
from ..context import AgentContext
from ..decide.arrival import ArrivalOutcome, decide_arrival, decide_mount, decide_usb_device
from ..messages import MountedMedium
from . import central as central_registry, gate, registry as registry_mod
from .recognise import Recognised, recognise
from .history import LevelHistory
from .identity import identify, medium_key
from .mounts import Mount, MountWatcher, as_users_see_them, mounts_of, read_mounts
from .sysfs import BlockDevice, block_device, list_block, list_usb, usb_device
from .uevents import Uevent, UeventSource
from .users import active_user

log = logging.getLogger(__name__)


@dataclass
class Tracked:
    dev: BlockDevice
    key: str
    c: Recognised
    arrival: ArrivalOutcome
    # by the mount point users know (media/mounts.py as_users_see_them)
    mounts: dict[str, Mount] = field(default_factory=dict)
    published: dict[str, MountedMedium] = field(default_factory=dict)
    enforced: set[str] = field(default_factory=set)     # mounts the agent took down
    ro_set: bool = False                                 # the agent set BLKROSET

    @property
    def action(self) -> str:
        return self.arrival.decision.action

    @property
    def rule(self) -> str:
        return self.arrival.decision.rule


class MediaComponent:
    name = "media"

    def __init__(self, ctx: AgentContext, root: str = "/"):
        self.ctx = ctx
        self.cfg = ctx.config.media
        self.root = root
        self.host_class = ctx.config.host.class_
        self.hidden_root = str(ctx.config.enforce.gateway_root / "real")
        self.history = LevelHistory(ctx.config.state_dir)
        self.registry = registry_mod.Registry()
        self._registry_stamp: tuple | None = None
        self._file_stamp: tuple[int, int] | None = None
        self._local: registry_mod.Registry | None = None     # media.toml as last loaded without error
        self._merged_central: tuple | None = None
        self.media: dict[str, Tracked] = {}
        self.usb_seen: dict[str, str] = {}
        self.q: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.source: UeventSource | None = None
        self._last_overflow = 0.0

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> None:
        # a medium the staging gateway serves again after a restart: its hidden mount now
        # counts as the mount users know (ctx.held), so look at the mounts again
        self.ctx.bus.subscribe("medium.held", lambda key: self.q.put(("mounts", None)))
        # a new central registry document: media.toml merged with it again, attached media judged again
        self.ctx.bus.subscribe(central_registry.TOPIC, lambda version: self.q.put(("rescan", "central registry")))
        self._load_registry(initial=True)
        self.q.put(("rescan", "start"))
        try:
            self.source = UeventSource(lambda ev: self.q.put(("uevent", ev)),
                                       lambda why: self.q.put(("overflow", why)), self._stop)
            self.source.start()
        except OSError as exc:  # no netlink (containers): rescans alone keep the view right
            log.warning("no device events (%s); re-enumerating every second", exc)
            self.cfg.rescan_s = min(self.cfg.rescan_s, 1.0)
        # a change is queued as news, and the table read when it is handled: a rescan or a
        # uevent handled in between reads a newer table, and a queued older one would
        # then undo what it saw (a medium mounted meanwhile reported unmounted)
        MountWatcher(lambda _table: self.q.put(("mounts", None)), self._stop).start()
        for target, name in ((self._worker, "baomi-media"), (self._ticker, "baomi-media-rescan")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        self.q.put(("stop", None))
        for t in self._threads:
            t.join(timeout=5)
        if self.source:
            self.source.close()

    def _ticker(self) -> None:
        while not self._stop.wait(self.cfg.rescan_s):
            self.q.put(("rescan", "periodic"))

    def _worker(self) -> None:
        while not self._stop.is_set():
            kind, arg = self.q.get()
            try:
                if kind == "uevent":
                    self._on_uevent(arg)
                elif kind == "mounts":
                    self._sync_mounts(read_mounts())
                elif kind == "rescan":
                    self._rescan()
                elif kind == "overflow":
                    self._on_overflow(arg)
            except Exception as exc:  # one bad device must not stop the gate for the others
                log.exception("media: handling %s failed", kind)
                try:
                    self.ctx.record("media.error", severity="medium",
                                    details={"while": kind, "error": f"{type(exc).__name__}: {exc}"})
                except Exception:
                    log.exception("media: cannot record error")

    # -- registry ------------------------------------------------------------
    def _load_registry(self, initial: bool = False) -> None:
        path = Path(self.cfg.registry)
        try:
            st = path.stat()
            file_stamp = (st.st_mtime_ns, st.st_size)
        except OSError:
            file_stamp = (0, 0)
        central = central_registry.registry_of(self.ctx)
        today = datetime.datetime.now(datetime.timezone.utc).date()
        # the file, the central document held, and the day (a central registration expires at midnight UTC)
        central_part = (central.running, central.signature, today)
        stamp = (file_stamp, central_part)
        if stamp == self._registry_stamp:
            return
        self._registry_stamp = stamp
        if file_stamp != self._file_stamp:
            try:
                key = (registry_mod.load_public_key(self.cfg.registry_public_key)
                       if self.cfg.registry_public_key else None)
                self._local = registry_mod.load(path, key)
                self._file_stamp = file_stamp
            except ConfigError as exc:
                log.error("media registry not loaded, previous one stays in force: %s", exc)
                self.ctx.record("registry.error", severity="high",
                                details={"file": exc.file, "line": exc.line, "key": exc.key, "error": str(exc),
                                         "kept_previous": True, "records_in_force": len(self.registry.records)})
                self._file_stamp = file_stamp
                if central.document is None or central_part == self._merged_central:
                    return   # nothing new to merge: the registry in force stays as it is
        new = registry_mod.merge_central(self._local or registry_mod.Registry(path), central.document, today)
        self._merged_central = central_part
        for rec in new.forged:
            self.ctx.record("medium.forged", severity="high", rule="registered.bad_signature",
                            medium={**rec.binding, "registry_id": rec.id, "class": "personal", "level": None},
                            details={"registry_id": rec.id, "problem": rec.problem, "file": str(path),
                                     "when": "registry_load"})
        for rec in new.records:
            seen = self.history.get(rec.id)
            if seen is not None and seen > rec.level:
                self.ctx.record("registry.level_lowering_refused", severity="high",
                                medium={**rec.binding, "registry_id": rec.id, "level": seen.id},
                                details={"registry_id": rec.id, "requested": rec.level.id,
                                         "kept": seen.id, "file": str(path)})
            else:
                self.history.raise_to(rec.id, rec.level)
        self.registry = new
        # on start too: the audit trail shows which registry was in force from when
        self.ctx.record("registry.loaded", details={"file": str(path), "records": len(new.records),
                                                     "forged": len(new.forged), "initial": initial,
                                                     "central_version": new.central_version,
                                                     "central_revoked": new.revoked,
                                                     "overridden_local": new.overridden})
        if not initial:
            # media attached now are judged again under the new registry
            for t in list(self.media.values()):
                c = recognise(t.c.identity, new, self.history.all())
                if (self._decide(t.dev, c).decision, c.identity.get("registry_id"), c.ceiling) != \
                        (t.arrival.decision, t.c.identity.get("registry_id"), t.c.ceiling):
                    self._removed(t, "registry changed")
                    self._sync_block(t.dev.name)

    # -- devices ---------------------------------------------------------------
    def _on_uevent(self, ev: Uevent) -> None:
        if ev.subsystem == "block":
            self._sync_block(ev.name, ev.props)
        elif ev.subsystem == "usb" and ev.devtype == "usb_device":
            self._sync_usb(Path(self.root, "sys", ev.devpath.lstrip("/")), ev.action)

    def _on_overflow(self, why: str) -> None:
        now = time.monotonic()
        if now - self._last_overflow > 1.0:  # one event per burst, not one per lost datagram
            self._last_overflow = now
            self.ctx.record("media.uevent_overflow", severity="medium", details={"reason": why})
        self._rescan()

    def _rescan(self) -> None:
        self._load_registry()
        names = set(list_block(self.root)) | set(self.media)
        for name in sorted(names):
            self._sync_block(name)
        present = {}
        for dev in list_usb(self.root):
            present[str(dev.syspath)] = dev
            self._sync_usb(dev.syspath, "add", dev)
        for path in list(self.usb_seen):
            if path not in present:
                self.usb_seen.pop(path, None)
        try:
            self._sync_mounts(read_mounts())
        except OSError as exc:
            log.warning("cannot read the mount table: %s", exc)

    def _sync_usb(self, syspath: Path, action: str, dev: Any = None) -> None:
        key = str(syspath)
        if action == "remove":
            self.usb_seen.pop(key, None)
            return
        if key in self.usb_seen:
            return
        dev = dev or usb_device(syspath)
        if dev is None:
            return
        self.usb_seen[key] = dev.kind or ""
        posture = self.ctx.config.posture
        out = decide_usb_device(dev.kind, self.host_class, posture.enabled and posture.deauthorize_wireless)
        if out.kind is None:
            return
        details: dict[str, Any] = {
            "vendor_id": dev.vendor_id, "product_id": dev.product_id, "serial": dev.serial,
            "manufacturer": dev.manufacturer, "product": dev.product, "reason": dev.reason,
            "interface_classes": [f"{c:02x}" for c in dev.interface_classes], "host_class": self.host_class}
        if out.deauthorize:
            details["effects"] = [{"effect": "deauthorize", "interface": i.name, "ok": gate.deauthorize(i)}
                                  for i in sorted(syspath.iterdir()) if (i / "bInterfaceClass").exists()]
        self.ctx.record(out.kind, severity=out.severity, user=active_user(), action=out.action,
                        rule="004 计算机规则 3" if out.deauthorize else None, details=details)

    def _sync_block(self, name: str, props: dict[str, str] | None = None) -> None:
        dev = block_device(name, self.root, self.cfg.extra_removable)
        present = dev is not None and dev.removable and dev.size > 0 and dev.leaf
        known = self.media.get(name)
        if not present:
            if known:
                self._removed(known, "gone")
            return
        assert dev is not None
        ident = identify(dev, props)
        key = f"{name}-{medium_key(ident)}"
        if known and known.key == key:
            return
        if known:  # another filesystem or medium behind the same name (reformatted, loop re-bound)
            self._removed(known, "replaced")
        self._inserted(dev, ident, key)

    def _decide(self, dev: BlockDevice, c: Recognised) -> ArrivalOutcome:
        return decide_arrival(self.host_class, c.medium_class, c.ceiling, c.allowed_hosts,
                              gate.is_read_only(dev.devnode), dev.read_only,
                              self.ctx.config.policy.actions)

    def _inserted(self, dev: BlockDevice, ident: dict[str, Any], key: str) -> None:
        c = recognise(ident, self.registry, self.history.all())
        t = Tracked(dev=dev, key=key, c=c, arrival=self._decide(dev, c))
        self.media[dev.name] = t
        effects = self._gate(t)                      # before anything else: speed is the point
        user = active_user()
        details = {"removable": dev.reason, "disk": dev.disk}
        if not c.identity.get("fs_type"):
            details["filesystem"] = "unknown or none"
        self.ctx.record("medium.inserted", user=user, medium=c.identity, details=details)
        if c.forged is not None:
            self.ctx.record("medium.forged", severity="high", user=user, medium=c.identity,
                            rule="registered.bad_signature",
                            details={"registry_id": c.forged.id, "problem": c.forged.problem,
                                     "treated_as": "personal"})
        a = t.arrival
        d = a.decision
        self.ctx.record(a.kind, severity=a.severity, user=user,
                        medium=c.identity, action=d.action, rule=d.rule,
                        details={"reason": d.reason, "effects": effects, "host_class": self.host_class})
        try:
            self._sync_device_mounts(t, read_mounts())
        except OSError:
            pass

    def _gate(self, t: Tracked) -> list[str]:
        effects = []
        if t.arrival.set_read_only:
            for node in dict.fromkeys([t.dev.devnode] + ([f"/dev/{t.dev.disk}"] if t.dev.partition else [])):
                if gate.set_read_only(node):
                    t.ro_set = True
                    effects.append(f"blkroset:{node}")
        if t.arrival.deauthorize:
            for iface in t.dev.usb_interfaces:
                if gate.deauthorize(iface):
                    effects.append(f"deauthorized:{iface.name}")
        if t.arrival.clear_read_only:
            gate.set_read_only(t.dev.devnode, False)  # left over from a previous medium on this node
        return effects

    def _removed(self, t: Tracked, why: str) -> None:
        for mid in list(t.mounts):
            self._unmounted(t, t.mounts.pop(mid), "medium removed")
        self.media.pop(t.dev.name, None)
        if t.ro_set and os.path.exists(t.dev.devnode):
            gate.set_read_only(t.dev.devnode, False)   # the node may carry the next medium
        self.ctx.record("medium.removed", user=active_user(), medium=t.c.identity, details={"why": why})

    # -- mounts ----------------------------------------------------------------
    def _sync_mounts(self, mounts: list[Mount]) -> None:
        for t in list(self.media.values()):
            self._sync_device_mounts(t, mounts)

    def _sync_device_mounts(self, t: Tracked, mounts: list[Mount]) -> None:
        now = as_users_see_them(mounts_of(mounts, t.dev.devnum, t.dev.devnode), self.hidden_root,
                                self.ctx.held.get(t.key))
        for mp in [mp for mp in t.mounts if mp not in now]:
            self._unmounted(t, t.mounts.pop(mp), "unmounted")
        for mp, m in now.items():
            if mp not in t.mounts:
                t.mounts[mp] = m
                self._mounted(t, m)

    def _mounted(self, t: Tracked, m: Mount) -> None:
        ident = t.c.identity
        details = {"mountpoint": m.mountpoint, "read_only": m.read_only, "fstype": m.fstype}
        self.ctx.record("medium.mounted", medium=ident, action=t.action, rule=t.rule, details=details)
        mo = decide_mount(t.action, m.read_only)
        if mo.effect == "unmount":
            ok, msg = gate.unmount(m.mountpoint)
            gate.set_read_only(t.dev.devnode)
            done = {"effect": msg, "unmounted": ok}
        elif mo.effect == "remount_read_only":
            ok, msg = gate.remount_read_only(t.dev.devnode, m.mountpoint, ident.get("fs_type", ""))
            done = {"effect": msg, "remounted": ok}
        if mo.kind is not None:
            t.enforced.add(m.mountpoint)
            self.ctx.record(mo.kind, severity=mo.severity, user=active_user(), medium=ident, action=t.action,
                            rule=t.rule, details={**details, **done})
            return
        mm = MountedMedium(key=t.key, devnode=t.dev.devnode, mountpoint=Path(m.mountpoint),
                           read_only=m.read_only, medium_class=ident["class"],
                           level_ceiling=t.c.ceiling, registry_id=ident.get("registry_id"),
                           identity=dict(ident))
        t.published[m.mountpoint] = mm
        self.ctx.bus.publish("medium.mounted", mm)

    def _unmounted(self, t: Tracked, m: Mount, why: str) -> None:
        mm = t.published.pop(m.mountpoint, None)
        if mm is not None:
            self.ctx.bus.publish("medium.unmounted", mm)
        by_agent = m.mountpoint in t.enforced
        t.enforced.discard(m.mountpoint)
        self.ctx.record("medium.unmounted", medium=t.c.identity, action=t.action if by_agent else None,
                        rule=t.rule if by_agent else None,
                        details={"mountpoint": m.mountpoint, "why": "by the gate" if by_agent else why,
                                 "mountpoint_exists": os.path.isdir(m.mountpoint)})

    # -- for `media list` and tests ---------------------------------------------
    def snapshot(self) -> list[dict[str, Any]]:
        return [{**t.c.identity, "action": t.action, "rule": t.rule,
                 "mounts": [m.mountpoint for m in t.mounts.values()]} for t in self.media.values()]

