"""A medium's identity: USB vendor/product/serial, filesystem UUID/label/type, size.

The binding that a registration signs is (vendor_id, product_id, serial, fs_uuid):
cheap sticks share serial numbers, so the filesystem UUID is always part of it.
"""
from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
from typing import Any, Mapping

from baomi.common.media_registry import binds

from .sysfs import BlockDevice, read_attr

log = logging.getLogger(__name__)

BINDING_KEYS = ("vendor_id", "product_id", "serial", "fs_uuid")


def probe_filesystem(devnode: str, timeout: float = 5.0) -> dict[str, str]:
    """Low-level probe (blkid -p, no cache) of the filesystem on a device; {} if none or unknown."""
    blkid = shutil.which("blkid") or "/usr/sbin/blkid"
    try:
        out = subprocess.run([blkid, "-p", "-o", "export", devnode], capture_output=True, text=True,
                             timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.debug("blkid %s: %s", devnode, exc)
        return {}
    props = {}
    for line in out.stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            props[key] = value
    return {"fs_uuid": props.get("UUID", ""), "fs_label": props.get("LABEL", ""),
            "fs_type": props.get("TYPE", "")}


def from_udev_properties(props: Mapping[str, str]) -> dict[str, str]:
    """Filesystem fields from udev/libblkid properties (ID_FS_*), when a udev database has them."""
    return {"fs_uuid": props.get("ID_FS_UUID", ""), "fs_label": props.get("ID_FS_LABEL", ""),
            "fs_type": props.get("ID_FS_TYPE", "")}


_udev_context: Any = None


def udev_properties(syspath: str) -> dict[str, str]:
    """udev's database entry for a device (libblkid-backed ID_FS_* when a udev daemon ran); {} if none."""
    global _udev_context
    try:
        import pyudev
        if _udev_context is None:
            _udev_context = pyudev.Context()
        return dict(pyudev.Devices.from_sys_path(_udev_context, syspath).properties)
    except Exception:
        return {}


def identify(dev: BlockDevice, props: Mapping[str, str] | None = None, probe: bool = True) -> dict[str, Any]:
    """The event's `medium` object (without registry_id/class/level, which the registry adds)."""
    usb = dev.usb_device
    fs = from_udev_properties(props or {})
    if not fs["fs_uuid"] and not fs["fs_type"]:
        fs = from_udev_properties(udev_properties(str(dev.syspath)))
    if probe and not fs["fs_uuid"] and not fs["fs_type"]:
        fs = probe_filesystem(dev.devnode) or fs
    return {
        "vendor_id": read_attr(usb / "idVendor") if usb else "",
        "product_id": read_attr(usb / "idProduct") if usb else "",
        "serial": read_attr(usb / "serial") if usb else "",
        "manufacturer": read_attr(usb / "manufacturer") if usb else "",
        "product": read_attr(usb / "product") if usb else "",
        "fs_uuid": fs.get("fs_uuid", ""),
        "fs_label": fs.get("fs_label", ""),
        "fs_type": fs.get("fs_type", ""),
        "size": dev.size,
        "devnode": dev.devnode,
        "removable_reason": dev.reason,
        "registry_id": None,
        "class": "personal",
        "level": None,
    }


def binding(identity: Mapping[str, Any]) -> dict[str, str]:
    return {k: str(identity.get(k) or "") for k in BINDING_KEYS}


def medium_key(identity: Mapping[str, Any]) -> str:
    """A stable key for one medium: the binding hashed (two sticks with one serial differ by fs UUID)."""
    b = binding(identity)
    raw = "|".join(b[k] for k in BINDING_KEYS)
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def matches(record_binding: Mapping[str, Any], identity: Mapping[str, Any]) -> bool:
    """A record matches a medium when its fs UUID is equal and every USB field it names is equal.

    A record must name a fs UUID; an empty field in the record for the USB part means
    "not bound" (e.g. an SD card reader without a serial). The rule is shared with the
    collector (baomi.common.media_registry.binds), which finds a medium's history by it."""
    return binds(record_binding, identity)
