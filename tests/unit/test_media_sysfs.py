"""The removable decision and USB classification, from sysfs trees built in a temporary folder."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from baomi.agent.media.sysfs import block_device, usb_kind, list_usb, removable_media


def make_block(root: Path, devpath: str, name: str, *, size: int = 2048, removable: str = "0",
               partitions: tuple[str, ...] = (), dev: str = "8:0") -> Path:
    d = root / "sys" / devpath.lstrip("/")
    d.mkdir(parents=True)
    (d / "dev").write_text(dev + "\n")
    (d / "size").write_text(f"{size}\n")
    (d / "removable").write_text(removable + "\n")
    (d / "ro").write_text("0\n")
    cls = root / "sys" / "class" / "block"
    cls.mkdir(parents=True, exist_ok=True)
    (cls / name).symlink_to(d)
    for i, part in enumerate(partitions, 1):
        p = d / part
        p.mkdir()
        (p / "dev").write_text(f"8:{i}\n")
        (p / "size").write_text(f"{size // 2}\n")
        (p / "partition").write_text(f"{i}\n")
        (cls / part).symlink_to(p)
    return d


def attrs(d: Path, **values: str) -> None:
    d.mkdir(parents=True, exist_ok=True)
    for k, v in values.items():
        (d / k).write_text(v + "\n")


USB = "/devices/pci0000:00/0000:00:14.0/usb1/1-2"


def test_usb_disk_is_removable_and_finds_its_storage_interface(tmp_path):
    attrs(tmp_path / "sys" / USB.lstrip("/"), idVendor="0781", idProduct="5567", serial="X1", authorized="1")
    attrs(tmp_path / "sys" / USB.lstrip("/") / "1-2:1.0", bInterfaceClass="08", authorized="1")
    make_block(tmp_path, USB + "/1-2:1.0/host6/target6:0:0/6:0:0:0/block/sdb", "sdb", partitions=("sdb1",))
    disk = block_device("sdb", tmp_path)
    part = block_device("sdb1", tmp_path)
    assert disk.removable and disk.reason == "bus:usb" and not disk.leaf
    assert part.removable and part.leaf and part.disk == "sdb" and part.partition
    assert part.usb_device.name == "1-2" and [i.name for i in part.usb_interfaces] == ["1-2:1.0"]
    assert [d.name for d in removable_media(tmp_path)] == ["sdb1"]


def test_internal_sata_disk_is_not_removable_even_with_id_bus_usb_like_names(tmp_path):
    make_block(tmp_path, "/devices/pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0/block/sda", "sda")
    dev = block_device("sda", tmp_path)
    assert not dev.removable and dev.reason == "fixed"
    assert removable_media(tmp_path) == []


def test_sd_card_via_mmc(tmp_path):
    make_block(tmp_path, "/devices/pci0000:00/0000:00:1e.6/mmc_host/mmc0/mmc0:aaaa/block/mmcblk0", "mmcblk0")
    assert block_device("mmcblk0", tmp_path).reason == "bus:mmc"


def test_thunderbolt_nvme_via_external_facing_port(tmp_path):
    port = tmp_path / "sys/devices/pci0000:00/0000:00:07.0"
    attrs(port, removable="removable")
    make_block(tmp_path, "/devices/pci0000:00/0000:00:07.0/0000:05:00.0/nvme/nvme0/nvme0n1", "nvme0n1")
    assert block_device("nvme0n1", tmp_path).reason == "bus:thunderbolt"


def test_removable_attribute_counts(tmp_path):
    make_block(tmp_path, "/devices/platform/cardreader/block/sdx", "sdx", removable="1")
    assert block_device("sdx", tmp_path).reason == "attribute:removable"


def test_name_patterns_from_config(tmp_path):
    make_block(tmp_path, "/devices/virtual/block/loop3", "loop3")
    assert not block_device("loop3", tmp_path).removable
    dev = block_device("loop3", tmp_path, ["loop*"])
    assert dev.removable and dev.reason == "pattern:loop*"


def test_empty_devices_are_not_media(tmp_path):
    make_block(tmp_path, "/devices/virtual/block/loop4", "loop4", size=0)
    assert removable_media(tmp_path, ["loop*"]) == []


def test_missing_device_is_none(tmp_path):
    assert block_device("sdz", tmp_path) is None


@pytest.mark.parametrize("interfaces,product,kind,reason", [
    ([(0x06, 1, 1, "MTP")], "Pixel 7", "phone", "mtp"),
    ([(0x06, 1, 1, "")], "Camera", "phone", "ptp"),
    ([(0xFF, 0xFF, 0, "MTP")], "Galaxy", "phone", "mtp"),
    ([(0xE0, 1, 1, "")], "BT adapter", "wireless", "bluetooth"),
    ([(0x03, 1, 1, ""), (0x03, 1, 2, "")], "USB Receiver", "wireless", "hid-receiver"),
    ([(0x03, 1, 1, "")], "USB Keyboard", None, ""),
    ([(0x08, 6, 0x50, "")], "Cruzer", "storage", "mass-storage"),
    ([(0x09, 0, 0, "")], "USB2.0 Hub", None, ""),
])
def test_classify_usb(interfaces, product, kind, reason):
    assert usb_kind("abcd", product, "", interfaces) == (kind, reason)


def test_wifi_adapter_by_wireless_netdev(tmp_path):
    dev = tmp_path / "sys/devices/pci0000:00/0000:00:14.0/usb1/1-3"
    attrs(dev, idVendor="0bda", idProduct="8179", product="802.11n NIC")
    attrs(dev / "1-3:1.0", bInterfaceClass="ff")
    (dev / "1-3:1.0/net/wlx00/phy80211").mkdir(parents=True)
    bus = tmp_path / "sys/bus/usb/devices"
    bus.mkdir(parents=True)
    (bus / "1-3").symlink_to(dev)
    (bus / "1-3:1.0").symlink_to(dev / "1-3:1.0")
    (usb,) = list_usb(tmp_path)
    assert (usb.kind, usb.reason) == ("wireless", "wifi")
    assert os.path.basename(usb.syspath) == "1-3"
