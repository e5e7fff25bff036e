"""USB wireless adapters and receivers on a sysfs-shaped tree of real files: on a classified
host every interface is de-authorized (authorized = 0) and the event says so; on an unclassified
host, or with [posture] deauthorize_wireless off, it is only reported; a keyboard is left alone."""
from __future__ import annotations

from pathlib import Path

import pytest

from baomi.agent.config import AgentConfig
from baomi.agent.context import open_context
from baomi.agent.media.component import MediaComponent
from baomi.agent.media.uevents import Uevent

from tests.unit.test_media_sysfs import attrs

BT = "/devices/pci0000:00/0000:00:14.0/usb1/1-3"
KEYBOARD = "/devices/pci0000:00/0000:00:14.0/usb1/1-4"


def _tree(root: Path) -> None:
    bt = root / "sys" / BT.lstrip("/")
    attrs(bt, idVendor="0a12", idProduct="0001", product="CSR8510 A10", manufacturer="", serial="",
          authorized="1")
    for n in ("1-3:1.0", "1-3:1.1"):  # Bluetooth: the HCI interface and the isochronous one
        attrs(bt / n, bInterfaceClass="e0", bInterfaceSubClass="01", bInterfaceProtocol="01", interface="",
              authorized="1")
    kb = root / "sys" / KEYBOARD.lstrip("/")
    attrs(kb, idVendor="413c", idProduct="2113", product="Dell KB216 Wired Keyboard", authorized="1")
    attrs(kb / "1-4:1.0", bInterfaceClass="03", bInterfaceSubClass="01", bInterfaceProtocol="01",
          interface="", authorized="1")


def _plug(tmp_path: Path, host_class: str, deauthorize: bool = True) -> tuple[list[dict], Path]:
    cfg = AgentConfig()
    cfg.host.class_ = host_class  # type: ignore[assignment]
    cfg.paths.state_dir = tmp_path / "state"
    cfg.media.registry = tmp_path / "none.toml"
    cfg.posture.deauthorize_wireless = deauthorize
    root = tmp_path / "fs"
    _tree(root)
    ctx = open_context(cfg)
    try:
        comp = MediaComponent(ctx, root=str(root))
        for path in (BT, KEYBOARD):
            comp._on_uevent(Uevent("add", path, "usb", devtype="usb_device"))
        return [e for e in ctx.spool.iter_events() if e["kind"].startswith("device.")], root / "sys"
    finally:
        ctx.spool.close()


def _authorized(sys: Path, path: str, iface: str) -> str:
    return (sys / path.lstrip("/") / iface / "authorized").read_text().strip()


def test_a_classified_host_deauthorizes_every_interface_of_a_wireless_adapter(tmp_path: Path) -> None:
    events, sys = _plug(tmp_path, "classified")
    (ev,) = events  # the keyboard is not reported
    assert (ev["kind"], ev["severity"], ev["action"], ev["rule"]) == ("device.wireless", "high", "block",
                                                                      "004 计算机规则 3")
    assert ev["details"]["effects"] == [{"effect": "deauthorize", "interface": "1-3:1.0", "ok": True},
                                        {"effect": "deauthorize", "interface": "1-3:1.1", "ok": True}]
    assert [_authorized(sys, BT, i) for i in ("1-3:1.0", "1-3:1.1")] == ["0", "0"]
    assert _authorized(sys, KEYBOARD, "1-4:1.0") == "1"


@pytest.mark.parametrize("host_class,deauthorize", [("unclassified", True), ("classified", False)])
def test_otherwise_the_adapter_is_only_reported(tmp_path: Path, host_class: str, deauthorize: bool) -> None:
    events, sys = _plug(tmp_path, host_class, deauthorize)
    (ev,) = events
    assert (ev["kind"], ev["severity"], ev["action"]) == ("device.wireless", "medium", "audit")
    assert "effects" not in ev["details"]
    assert [_authorized(sys, BT, i) for i in ("1-3:1.0", "1-3:1.1")] == ["1", "1"]


def test_a_failed_deauthorization_is_recorded(tmp_path: Path) -> None:
    root = tmp_path / "fs"
    _tree(root)
    (root / "sys" / BT.lstrip("/") / "1-3:1.1" / "authorized").unlink()
    (root / "sys" / BT.lstrip("/") / "1-3:1.1" / "authorized").mkdir()  # cannot be written
    cfg = AgentConfig()
    cfg.host.class_ = "classified"  # type: ignore[assignment]
    cfg.paths.state_dir = tmp_path / "state"
    cfg.media.registry = tmp_path / "none.toml"
    ctx = open_context(cfg)
    try:
        MediaComponent(ctx, root=str(root))._on_uevent(Uevent("add", BT, "usb", devtype="usb_device"))
        (ev,) = [e for e in ctx.spool.iter_events() if e["kind"] == "device.wireless"]
    finally:
        ctx.spool.close()
    assert [e["ok"] for e in ev["details"]["effects"]] == [True, False]
