"""A medium appearing on this host, and each of its mounts."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from baomi.common.levels import Level
from baomi.common.policy import Decision, device_action

GATE_KIND = {"allow": "medium.allowed", "read_only": "medium.read_only", "deny": "medium.denied"}
GATE_SEVERITY = {"allow": "info", "read_only": "medium", "deny": "high"}


@dataclass(frozen=True)
class ArrivalOutcome:
    decision: Decision
    kind: str
    severity: str
    set_read_only: bool                # BLKROSET before anyone mounts it
    deauthorize: bool                  # let go of the USB storage interface
    clear_read_only: bool              # a read-only flag left by a previous medium on the node


@dataclass(frozen=True)
class MountOutcome:
    effect: str                        # "unmount", "remount_read_only" or "watch"
    kind: str | None                   # the event the effect gives (besides medium.mounted)
    severity: str


def decide_arrival(host_class: str, medium_class: str, level_ceiling: Level | None,
                   allowed_host_classes: Iterable[str] | None, node_read_only: bool,
                   device_read_only: bool, overrides: Mapping[str, str] | None = None) -> ArrivalOutcome:
    d = device_action(host_class, medium_class, level_ceiling, allowed_host_classes, overrides)
    return ArrivalOutcome(d, GATE_KIND[d.action], GATE_SEVERITY[d.action],
                          set_read_only=d.action in ("deny", "read_only"),
                          deauthorize=d.action == "deny",
                          clear_read_only=d.action == "allow" and node_read_only and not device_read_only)


def decide_mount(action: str, mount_read_only: bool) -> MountOutcome:
    if action == "deny":
        return MountOutcome("unmount", "medium.denied", GATE_SEVERITY["deny"])
    if action == "read_only" and not mount_read_only:
        return MountOutcome("remount_read_only", "medium.read_only", GATE_SEVERITY["read_only"])
    return MountOutcome("watch", None, "info")


def usb_device_kind(kind: str | None) -> str | None:
    """USB devices that are not storage but still matter (004 rule 3: no wireless on classified PCs)."""
    return {"phone": "device.phone", "wireless": "device.wireless"}.get(kind or "")


@dataclass(frozen=True)
class UsbDeviceOutcome:
    kind: str | None                   # device.phone / device.wireless, or None: not reported
    severity: str
    action: str                        # "audit", or "block": its interfaces are de-authorized
    deauthorize: bool


def decide_usb_device(kind: str | None, host_class: str, deny_wireless: bool) -> UsbDeviceOutcome:
    """004 计算机规则 3: no wireless network cards, keyboards or mice on a classified PC. There the
    adapter or receiver is let go of (every interface de-authorized); elsewhere it is reported."""
    event = usb_device_kind(kind)
    if event is None:
        return UsbDeviceOutcome(None, "info", "audit", False)
    if kind == "wireless" and host_class == "classified" and deny_wireless:
        return UsbDeviceOutcome(event, "high", "block", True)
    return UsbDeviceOutcome(event, "medium", "audit", False)
