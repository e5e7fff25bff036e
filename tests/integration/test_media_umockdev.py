"""Simulated USB devices (umockdev): identification, the removable decision, and the
sysfs writes the gate makes. The component runs inside `umockdev-run`, which shows it
the simulated /sys; the probe prints what it saw and what it wrote as JSON."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.skips import need_tools

pytestmark = [pytest.mark.timeout(120)]

DATA = Path(__file__).resolve().parent.parent / "data" / "umockdev"

PROBE = r'''
import json, sys, time
from pathlib import Path
from baomi.agent.config import AgentConfig
from baomi.agent.context import open_context
from baomi.agent.media.component import MediaComponent
from baomi.agent.media.listing import attached_media
from baomi.agent.media.sysfs import list_usb

state, host_class, registry, pub = sys.argv[1:5]
cfg = AgentConfig()
cfg.host.class_ = host_class
cfg.paths.state_dir = Path(state)
cfg.media.registry = Path(registry)
cfg.media.registry_public_key = Path(pub) if pub else None
out = {"inventory": attached_media(cfg),
       "usb": [{"path": str(d.syspath), "kind": d.kind, "reason": d.reason, "vendor_id": d.vendor_id,
                "product_id": d.product_id, "serial": d.serial} for d in list_usb()]}
ctx = open_context(cfg)
comp = MediaComponent(ctx)
comp.start()
deadline = time.monotonic() + 20
while time.monotonic() < deadline:
    kinds = [e["kind"] for e in ctx.spool.iter_events()]
    if any(k.startswith("medium.") and k != "medium.inserted" or k.startswith("device.") for k in kinds):
        break
    time.sleep(0.1)
time.sleep(0.3)
comp.stop()
out["authorized"] = {str(p): p.read_text().strip()
                     for p in Path("/sys/devices").rglob("authorized")}
out["events"] = list(ctx.spool.iter_events())
print(json.dumps(out))
'''


def probe(tmp_path: Path, description: str, host_class: str, registry: Path | None = None,
          pub: Path | None = None) -> dict:
    need_tools("umockdev-run")
    cmd = ["umockdev-run", "-d", str(DATA / description), "--", sys.executable, "-c", PROBE,
           str(tmp_path / "state"), host_class, str(registry or tmp_path / "none.toml"), str(pub or "")]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


def kinds(out: dict) -> list[str]:
    return [e["kind"] for e in out["events"]]


def test_usb_stick_identified_and_deauthorized_on_classified_host(tmp_path):
    out = probe(tmp_path, "usbstick.umockdev", "classified")
    (m,) = out["inventory"]
    assert m["devnode"] == "/dev/sdb1" and m["removable_reason"] == "bus:usb"
    assert (m["vendor_id"], m["product_id"], m["serial"]) == ("0781", "5567", "4C530001230101115365")
    assert (m["fs_uuid"], m["fs_label"], m["fs_type"]) == ("3A5F-1C2D", "SANDISK", "vfat")
    assert m["size"] == 60062720 * 512 and m["class"] == "personal" and m["action"] == "deny"
    assert m["usb_interfaces"] == ["1-2:1.0"]
    auth = out["authorized"]
    assert auth["/sys/devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/authorized"] == "0"
    assert auth["/sys/devices/pci0000:00/0000:00:14.0/usb1/1-2/authorized"] == "1"   # only the storage interface
    denied = [e for e in out["events"] if e["kind"] == "medium.denied"]
    assert denied and "deauthorized:1-2:1.0" in denied[0]["details"]["effects"]
    assert denied[0]["medium"]["serial"] == "4C530001230101115365"


def test_usb_stick_allowed_on_unclassified_host_stays_authorized(tmp_path):
    out = probe(tmp_path, "usbstick.umockdev", "unclassified")
    assert all(v == "1" for v in out["authorized"].values())
    assert "medium.allowed" in kinds(out)


def test_stick_behind_hub(tmp_path):
    out = probe(tmp_path, "hub-with-stick.umockdev", "classified")
    (m,) = out["inventory"]
    assert m["devnode"] == "/dev/sdc1" and m["removable_reason"] == "bus:usb"
    assert (m["vendor_id"], m["serial"], m["fs_uuid"]) == ("0781", "AA00000000001234", "7788-99AA")
    auth = out["authorized"]
    assert auth["/sys/devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1.3/1-1.3:1.0/authorized"] == "0"
    # the hub and its other ports keep working
    assert auth["/sys/devices/pci0000:00/0000:00:14.0/usb1/1-1/authorized"] == "1"
    assert auth["/sys/devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1:1.0/authorized"] == "1"
    kinds_of = {d["path"].rsplit("/", 1)[-1]: d["kind"] for d in out["usb"]}
    assert kinds_of["1-1.3"] == "storage" and kinds_of["1-1"] is None


def test_phone_in_mtp_mode_is_reported(tmp_path):
    out = probe(tmp_path, "phone-mtp.umockdev", "classified")
    assert out["inventory"] == []   # no block device: not a medium
    (ev,) = [e for e in out["events"] if e["kind"] == "device.phone"]
    assert ev["details"]["vendor_id"] == "18d1" and ev["details"]["reason"] == "mtp"
    assert ev["details"]["product"] == "Pixel 7" and ev["details"]["host_class"] == "classified"


def test_wireless_keyboard_receiver_is_reported(tmp_path):
    out = probe(tmp_path, "wireless-receiver.umockdev", "classified")
    (ev,) = [e for e in out["events"] if e["kind"] == "device.wireless"]
    assert (ev["details"]["vendor_id"], ev["details"]["product_id"]) == ("046d", "c52b")
    assert ev["details"]["reason"] == "hid-receiver" and ev["details"]["interface_classes"] == ["03", "03"]


def test_registered_stick_binds_to_serial_and_fs_uuid(tmp_path):
    """The registration made for this stick is honoured; the same serial with another
    filesystem UUID (cheap sticks share serials) is a different, personal medium."""
    from baomi.agent.media import registry as reg
    priv, pub = tmp_path / "k.pem", tmp_path / "k.pub.pem"
    reg.generate_keypair(priv, pub)
    key = reg.load_private_key(priv)
    registry = tmp_path / "media.toml"
    reg.add_record(registry, reg.sign_record({"id": "M-9", "owner": "王五", "level": "secret",
                                              "hosts": ["classified"], "vendor_id": "0781",
                                              "product_id": "5567", "serial": "4C530001230101115365",
                                              "fs_uuid": "3A5F-1C2D"}, key))
    out = probe(tmp_path, "usbstick.umockdev", "classified", registry, pub)
    (m,) = out["inventory"]
    assert m["class"] == "registered" and m["registry_id"] == "M-9" and m["action"] == "allow"
    assert all(v == "1" for v in out["authorized"].values())
    # same serial, other filesystem
    other = tmp_path / "other.umockdev"
    other.write_text((DATA / "usbstick.umockdev").read_text().replace("3A5F-1C2D", "0000-1111"))
    out2 = probe(tmp_path / "2", str(other), "classified", registry, pub)
    (m2,) = out2["inventory"]
    assert m2["class"] == "personal" and m2["action"] == "deny"
