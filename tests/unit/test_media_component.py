"""The component's state machine fed with hundreds of uevents over a sysfs tree in a temporary
folder (unclassified host, so no effect reaches a real device)."""
from __future__ import annotations

import shutil

from baomi.agent.config import AgentConfig
from baomi.agent.context import open_context
from baomi.agent.media.component import MediaComponent
from baomi.agent.media.uevents import Uevent

from tests.unit.test_media_sysfs import USB, attrs, make_block

DEVPATH = USB + "/1-2:1.0/host6/target6:0:0/6:0:0:0/block/sdq"


def build(root):
    attrs(root / "sys" / USB.lstrip("/"), idVendor="0781", idProduct="5567", serial="X1", authorized="1")
    attrs(root / "sys" / USB.lstrip("/") / "1-2:1.0", bInterfaceClass="08", authorized="1")
    make_block(root, DEVPATH, "sdq", partitions=("sdq1",))


def unplug(root):
    shutil.rmtree(root / "sys" / "devices")
    for name in ("sdq", "sdq1"):
        (root / "sys" / "class" / "block" / name).unlink()


def component(tmp_path):
    cfg = AgentConfig()
    cfg.host.class_ = "unclassified"
    cfg.paths.state_dir = tmp_path / "state"
    cfg.media.registry = tmp_path / "none.toml"
    ctx = open_context(cfg)
    return ctx, MediaComponent(ctx, root=str(tmp_path / "fs"))


def test_flood_of_uevents_leaves_a_consistent_view(tmp_path):
    ctx, comp = component(tmp_path)
    root = tmp_path / "fs"
    props = {"ID_FS_UUID": "3A5F-1C2D", "ID_FS_TYPE": "vfat"}
    for i in range(200):   # 200 plug/unplug cycles, 4 uevents each
        build(root)
        comp._on_uevent(Uevent("add", DEVPATH, "block", "/dev/sdq", "disk"))
        comp._on_uevent(Uevent("add", DEVPATH + "/sdq1", "block", "/dev/sdq1", "partition", props))
        assert set(comp.media) == {"sdq1"}
        unplug(root)
        comp._on_uevent(Uevent("remove", DEVPATH + "/sdq1", "block", "/dev/sdq1", "partition"))
        comp._on_uevent(Uevent("remove", DEVPATH, "block", "/dev/sdq", "disk"))
        assert comp.media == {}
    kinds = [e["kind"] for e in ctx.spool.iter_events()]
    assert kinds.count("medium.inserted") == kinds.count("medium.removed") == kinds.count("medium.allowed") == 200
    ins = next(e for e in ctx.spool.iter_events(kind="medium.inserted") if e["kind"] == "medium.inserted")
    assert ins["medium"]["serial"] == "X1" and ins["medium"]["fs_uuid"] == "3A5F-1C2D"
    ctx.spool.close()


def test_lost_uevents_are_corrected_by_the_rescan(tmp_path):
    ctx, comp = component(tmp_path)
    root = tmp_path / "fs"
    build(root)
    comp._on_overflow("kernel uevent socket overflow (ENOBUFS)")   # the add event itself was lost
    assert set(comp.media) == {"sdq1"}
    comp._on_overflow("again, in the same burst")
    unplug(root)
    comp._rescan()                                                  # periodic re-enumeration
    assert comp.media == {}
    kinds = [e["kind"] for e in ctx.spool.iter_events()]
    assert kinds.count("media.uevent_overflow") == 1                # one event per burst
    assert kinds.count("medium.inserted") == 1 and kinds.count("medium.removed") == 1
    ctx.spool.close()
