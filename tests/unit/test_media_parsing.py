"""mountinfo and kernel uevent parsing (pure)."""
from __future__ import annotations

import os

from baomi.agent.media.mounts import as_users_see_them, mounts_of, parse_mountinfo
from baomi.agent.media.uevents import parse_kernel_uevent

MOUNTINFO = """\
22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro
95 22 7:3 / /media/zhang/WORK\\040DISK rw,nosuid,nodev,relatime shared:50 - ext4 /dev/loop3 rw
96 22 0:55 / /media/zhang/STICK rw,nosuid,nodev,relatime shared:51 - fuseblk /dev/loop4 rw,user_id=0,allow_other
97 22 7:5 / /mnt/ro ro,relatime shared:52 - ext4 /dev/loop5 rw
98 22 7:6 / /mnt/sro rw,relatime shared:53 - ext4 /dev/loop6 ro
this line is garbage
"""


def test_parse_mountinfo():
    ms = parse_mountinfo(MOUNTINFO)
    assert len(ms) == 5
    m = ms[1]
    assert (m.mount_id, m.devnum, m.mountpoint, m.fstype, m.source) == (95, "7:3", "/media/zhang/WORK DISK",
                                                                          "ext4", "/dev/loop3")
    assert not m.read_only
    assert ms[3].read_only and ms[4].read_only


def test_mounts_of_by_devnum_and_by_fuse_source():
    ms = parse_mountinfo(MOUNTINFO)
    assert [m.mount_id for m in mounts_of(ms, "7:3", "/dev/loop3")] == [95]
    assert [m.mount_id for m in mounts_of(ms, "7:4", "/dev/loop4")] == [96]   # FUSE: 0:55 but source matches
    assert mounts_of(ms, "8:17", "/dev/sdb1") == []


def test_a_medium_held_by_the_gateway_keeps_its_user_mount_point():
    ms = parse_mountinfo(MOUNTINFO + "99 22 7:3 / /run/baomi/gateway/real/loop3-x rw,relatime - ext4 /dev/loop3 rw\n")
    dev = mounts_of(ms, "7:3", "/dev/loop3")
    # mid take-over both mounts exist; after it only the hidden one: either way one mount, at the user's path
    for mounts in (dev, dev[1:]):
        seen = as_users_see_them(mounts, "/run/baomi/gateway/real", "/media/zhang/WORK DISK")
        assert list(seen) == ["/media/zhang/WORK DISK"]
    # a hidden mount the gateway does not (or no longer) hold is none of the users' business
    assert as_users_see_them(dev[1:], "/run/baomi/gateway/real", None) == {}
    assert list(as_users_see_them(dev[:1], "/run/baomi/gateway/real", None)) == ["/media/zhang/WORK DISK"]


def uevent(action: str, devpath: str, **props: str) -> bytes:
    body = {"ACTION": action, "DEVPATH": devpath, **props}
    return f"{action}@{devpath}".encode() + b"\0" + b"\0".join(f"{k}={v}".encode() for k, v in body.items()) + b"\0"


def test_parse_kernel_uevent():
    ev = parse_kernel_uevent(uevent("change", "/devices/virtual/block/loop3", SUBSYSTEM="block",
                                    DEVNAME="loop3", DEVTYPE="disk", SEQNUM="4242"))
    assert (ev.action, ev.subsystem, ev.name, ev.devtype) == ("change", "block", "loop3", "disk")
    assert ev.props["SEQNUM"] == "4242"
    usb = parse_kernel_uevent(uevent("add", "/devices/pci0000:00/0000:00:14.0/usb1/1-2", SUBSYSTEM="usb",
                                     DEVTYPE="usb_device", DEVNAME="bus/usb/001/003"))
    assert usb.devtype == "usb_device" and usb.name == "003"


def test_malformed_and_udev_messages_are_ignored():
    assert parse_kernel_uevent(b"") is None
    assert parse_kernel_uevent(b"libudev\0\xfe\xed\xca\xfe") is None
    assert parse_kernel_uevent(b"no at sign here\0A=B") is None
    assert parse_kernel_uevent(os.urandom(64).replace(b"@", b"")) is None


def test_flood_of_uevents_parses_each_once():
    """Hundreds of datagrams as the kernel sends them in a burst, including junk between them."""
    msgs = []
    for i in range(800):
        msgs.append(uevent("add" if i % 2 == 0 else "remove", f"/devices/virtual/block/loop{i % 50}",
                           SUBSYSTEM="block", DEVNAME=f"loop{i % 50}", SEQNUM=str(i)))
        if i % 7 == 0:
            msgs.append(os.urandom(32).replace(b"@", b"#"))
    parsed = [e for e in map(parse_kernel_uevent, msgs) if e is not None]
    assert [int(e.props["SEQNUM"]) for e in parsed] == list(range(800))


def test_active_user_prefers_the_active_graphical_logind_session(tmp_path):
    from baomi.agent.media.users import active_user
    (tmp_path / "3").write_text("UID=1001\nUSER=lisi\nACTIVE=0\nTYPE=tty\nCLASS=user\n")
    (tmp_path / "7").write_text("UID=1000\nUSER=zhangsan\nACTIVE=1\nTYPE=wayland\nCLASS=user\n")
    (tmp_path / "c1").write_text("UID=120\nUSER=gdm\nACTIVE=1\nTYPE=wayland\nCLASS=greeter\n")
    assert active_user(tmp_path) == {"uid": 1000, "name": "zhangsan", "session": "7"}


def test_media_list_tells_held_from_after_write():
    from baomi.agent.media.listing import enforcement_mode, shown_at
    hidden = "/run/baomi/gateway/real"
    ms = parse_mountinfo(MOUNTINFO
                         + "99 22 7:3 / /run/baomi/gateway/real/loop3-x rw,relatime - ext4 /dev/loop3 rw\n"
                         + "100 22 0:60 /loop3-x /media/zhang/HELD rw - fuse.baomi-gateway baomi rw\n")
    dev3 = mounts_of(ms, "7:3", "/dev/loop3")
    assert enforcement_mode(dev3, hidden) == "after_write"       # still reachable directly at WORK DISK
    assert enforcement_mode(dev3[1:], hidden) == "held"
    assert shown_at(dev3[1], ms, hidden) == "/media/zhang/HELD"
    assert enforcement_mode(mounts_of(ms, "7:5", "/dev/loop5"), hidden) is None   # read-only
    assert enforcement_mode([], hidden) is None
