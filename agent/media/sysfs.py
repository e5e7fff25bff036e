"""Reading the device tree under /sys: which block devices are removable, and
which USB devices matter to the rules (storage, phones, wireless receivers).

Everything takes a `root` (default "/") so the decisions can be tested on
trees built in a temporary folder; under umockdev the real paths are
redirected to the test bed.
"""
from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

# path components that make a block device removable when found in its ancestry
REMOVABLE_BUSES = ("usb", "mmc", "thunderbolt")
_BUS_PART = re.compile(r"^(usb|mmc|thunderbolt)(?:$|[0-9:.-])")

USB_CLASS_STORAGE = 0x08
USB_CLASS_IMAGE = 0x06        # still image: PTP cameras and phones
USB_CLASS_HID = 0x03
USB_CLASS_WIRELESS = 0xE0     # wireless controller: Bluetooth adapters
WIRELESS_WORDS = ("receiver", "wireless", "unifying", "dongle", "nano", "2.4g", "bluetooth", "wlan",
                  "wi-fi", "wifi", "802.11")


def read_attr(path: Path | str, default: str = "") -> str:
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace").strip()
    except OSError:
        return default


def sys_path(root: Path | str, *parts: str) -> Path:
    return Path(root, "sys", *parts)


@dataclass
class BlockDevice:
    name: str                  # sdb1, loop3
    syspath: Path              # resolved /sys/devices/... path
    devnode: str               # /dev/sdb1
    devnum: str                # "8:17"
    size: int                  # bytes
    partition: bool
    disk: str                  # the whole disk's name (itself for a disk)
    has_partitions: bool
    removable: bool
    reason: str                # why removable (bus, attribute, pattern) or why not
    read_only: bool
    usb_device: Path | None = None      # the USB device directory (idVendor...) above it
    usb_interfaces: list[Path] = field(default_factory=list)  # its mass-storage interfaces

    @property
    def leaf(self) -> bool:
        """A partition, or a whole disk without partitions: what holds a filesystem."""
        return self.partition or not self.has_partitions


def _ancestry(syspath: Path, root: Path) -> list[Path]:
    out = []
    top = sys_path(root, "devices")
    p = syspath
    while p != p.parent and str(p).startswith(str(top)):
        out.append(p)
        p = p.parent
    return out


def removable_reason(name: str, disk: str, syspath: Path, root: Path | str,
                     extra_patterns: Iterable[str] = ()) -> tuple[bool, str]:
    """Decide from sysfs ancestry (usb, mmc, thunderbolt), the `removable` attribute of
    the disk and the site's name patterns. Returns (removable, reason)."""
    root = Path(root)
    for pattern in extra_patterns:
        if fnmatch.fnmatch(name, pattern) or fnmatch.fnmatch(disk, pattern):
            return True, f"pattern:{pattern}"
    rel = os.path.relpath(syspath, sys_path(root, "devices"))
    for part in Path(rel).parts:
        m = _BUS_PART.match(part)
        if m:
            return True, f"bus:{m.group(1)}"
    # PCI ports facing outside (Thunderbolt/USB4 tunnels) are marked "removable" by the kernel
    for p in _ancestry(syspath.parent, root):
        if read_attr(p / "removable") == "removable":
            return True, "bus:thunderbolt"
    disk_dir = syspath.parent if (syspath / "partition").exists() else syspath
    if read_attr(disk_dir / "removable") == "1":
        return True, "attribute:removable"
    return False, "fixed"


def _usb_parents(syspath: Path, root: Path) -> tuple[Path | None, list[Path]]:
    device = None
    for p in _ancestry(syspath, root):
        if (p / "idVendor").exists():
            device = p
            break
    if device is None:
        return None, []
    ifaces = [i for i in sorted(device.iterdir()) if (i / "bInterfaceClass").exists()
              and _hex(read_attr(i / "bInterfaceClass")) == USB_CLASS_STORAGE]
    return device, ifaces


def _hex(value: str) -> int:
    try:
        return int(value, 16)
    except ValueError:
        return -1


def block_device(name: str, root: Path | str = "/", extra_patterns: Iterable[str] = ()) -> BlockDevice | None:
    """Describe /sys/class/block/NAME, or None if it does not exist."""
    root = Path(root)
    link = sys_path(root, "class", "block", name)
    try:
        syspath = Path(os.path.realpath(link))
    except OSError:
        return None
    if not (syspath / "dev").exists():
        return None
    partition = (syspath / "partition").exists()
    disk = syspath.parent.name if partition else name
    try:
        size = int(read_attr(syspath / "size", "0")) * 512
    except ValueError:
        size = 0
    has_parts = (not partition) and any((c / "partition").exists() for c in syspath.iterdir()
                                        if c.name.startswith(name))
    removable, reason = removable_reason(name, disk, syspath, root, extra_patterns)
    usb, ifaces = _usb_parents(syspath, root)
    return BlockDevice(name=name, syspath=syspath, devnode=f"/dev/{name}",
                       devnum=read_attr(syspath / "dev"), size=size, partition=partition, disk=disk,
                       has_partitions=has_parts, removable=removable, reason=reason,
                       read_only=read_attr(syspath / "ro") == "1", usb_device=usb, usb_interfaces=ifaces)


def list_block(root: Path | str = "/") -> list[str]:
    try:
        return sorted(os.listdir(sys_path(root, "class", "block")))
    except OSError:
        return []


def removable_media(root: Path | str = "/", extra_patterns: Iterable[str] = ()) -> list[BlockDevice]:
    """Every present (size > 0) removable block device that holds a filesystem."""
    out = []
    for name in list_block(root):
        dev = block_device(name, root, extra_patterns)
        if dev and dev.removable and dev.size > 0 and dev.leaf:
            out.append(dev)
    return out


# -- non-storage USB devices the rules care about ------------------------------
@dataclass
class UsbDevice:
    syspath: Path
    vendor_id: str
    product_id: str
    serial: str
    manufacturer: str
    product: str
    interface_classes: list[int]
    kind: str | None           # "storage", "phone", "wireless" or None
    reason: str


def usb_kind(vendor: str, product_name: str, manufacturer: str, interfaces: list[tuple[int, int, int, str]],
                 has_wireless_net: bool = False) -> tuple[str | None, str]:
    """(kind, reason) from the interface descriptors (class, subclass, protocol, name).

    Pure: phone = still-image (PTP) interface or an interface named MTP;
    wireless = Bluetooth class, a wireless network device, or a HID whose name says receiver/wireless.
    """
    names = " ".join([product_name, manufacturer] + [i[3] for i in interfaces]).lower()
    classes = {i[0] for i in interfaces}
    if any("mtp" in i[3].lower() for i in interfaces) or "mtp" in product_name.lower():
        return "phone", "mtp"
    if USB_CLASS_IMAGE in classes:
        return "phone", "ptp"
    if USB_CLASS_WIRELESS in classes:
        return "wireless", "bluetooth"
    if has_wireless_net:
        return "wireless", "wifi"
    if USB_CLASS_HID in classes and any(w in names for w in WIRELESS_WORDS):
        return "wireless", "hid-receiver"
    if USB_CLASS_STORAGE in classes:
        return "storage", "mass-storage"
    return None, ""


def usb_device(syspath: Path) -> UsbDevice | None:
    if not (syspath / "idVendor").exists():
        return None
    ifaces = []
    wireless_net = False
    for i in sorted(syspath.iterdir()):
        if not (i / "bInterfaceClass").exists():
            continue
        ifaces.append((_hex(read_attr(i / "bInterfaceClass")), _hex(read_attr(i / "bInterfaceSubClass")),
                       _hex(read_attr(i / "bInterfaceProtocol")), read_attr(i / "interface")))
        net = i / "net"
        if net.is_dir():
            wireless_net = wireless_net or any((n / "wireless").exists() or (n / "phy80211").exists()
                                               for n in net.iterdir())
    vendor, product = read_attr(syspath / "idVendor"), read_attr(syspath / "idProduct")
    name, manuf = read_attr(syspath / "product"), read_attr(syspath / "manufacturer")
    kind, reason = usb_kind(vendor, name, manuf, ifaces, wireless_net)
    return UsbDevice(syspath=syspath, vendor_id=vendor, product_id=product, serial=read_attr(syspath / "serial"),
                     manufacturer=manuf, product=name, interface_classes=[i[0] for i in ifaces],
                     kind=kind, reason=reason)


def list_usb(root: Path | str = "/") -> list[UsbDevice]:
    base = sys_path(root, "bus", "usb", "devices")
    out = []
    try:
        names = sorted(os.listdir(base))
    except OSError:
        return out
    for name in names:
        if ":" in name:
            continue  # interfaces
        dev = usb_device(Path(os.path.realpath(base / name)))
        if dev:
            out.append(dev)
    return out
