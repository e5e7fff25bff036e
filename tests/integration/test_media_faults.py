"""Bad input and faults around the media gate, with the agent running as a subprocess."""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.test_media_gate import (agent_factory, free_loop_number, media,  # noqa: F401
                                               try_mount, wait_for, write_fails)

pytestmark = [pytest.mark.root, pytest.mark.timeout(180)]


def test_unknown_filesystem_is_reported_and_denied(agent_factory, media):
    agent = agent_factory("classified").start()
    m = media("ext4")
    m.workdir.mkdir(parents=True, exist_ok=True)
    with open(m.image, "wb") as f:
        f.write(os.urandom(4096))       # no filesystem signature anywhere
        f.truncate(8 * 1024 * 1024)
    dev = m.bind()
    ev = wait_for(lambda: agent.events_for("medium.inserted", dev), what="medium.inserted")[0]
    assert ev["medium"]["fs_type"] == "" and ev["details"]["filesystem"] == "unknown or none"
    denied = wait_for(lambda: agent.events_for("medium.denied", dev), what="medium.denied")[0]
    assert denied["medium"]["class"] == "personal"
    assert agent.alive()


def test_medium_yanked_while_mounted(agent_factory, media):
    agent = agent_factory("unclassified").start()
    m = media("ext4")
    dev = m.attach()
    mp = m.mount()
    # the staging gateway has taken it over (a yank in the middle of that, while the mount
    # point is briefly bare, made the test's own `umount -l` fail with "not mounted")
    wait_for(lambda: agent.events_for("enforce.mode", dev), what="enforce.mode")
    # yank: detach the loop device under the mount, then the lazy unmount a desktop would do
    subprocess.run(["losetup", "-d", dev], check=True)
    subprocess.run(["umount", "-l", str(mp)], check=True)
    m.devnode = None
    wait_for(lambda: agent.events_for("medium.unmounted", dev), what="medium.unmounted")
    wait_for(lambda: agent.events_for("medium.removed", dev), what="medium.removed")
    # the agent still gates the next medium
    m2 = media("ext4")
    dev2 = m2.attach()
    wait_for(lambda: agent.events_for("medium.allowed", dev2), what="next medium decided")
    assert agent.alive()


def test_medium_detached_while_being_mounted(agent_factory, media):
    agent = agent_factory("classified").start()
    m = media("exfat")
    dev = m.attach()
    wait_for(lambda: agent.events_for("medium.inserted", dev), what="medium.inserted")
    proc = subprocess.Popen(["mount.exfat-fuse", dev, str(m.workdir)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    subprocess.run(["losetup", "-d", dev], capture_output=True)
    proc.wait(timeout=30)
    m.mountpoint = m.workdir
    subprocess.run(["umount", "-l", str(m.workdir)], capture_output=True)
    m.devnode = None
    wait_for(lambda: agent.events_for("medium.removed", dev), what="medium.removed")
    assert agent.alive()
    # nothing left mounted from the vanished device, and the agent's view is empty again
    assert str(m.workdir) not in Path("/proc/self/mountinfo").read_text()


def test_mount_point_that_disappears(agent_factory, media, tmp_path):
    # the media component's own mount tracking: without the staging gateway, whose takeover of
    # the mount would race with the parent's unmount below
    agent = agent_factory("unclassified", gateway=False).start()
    outer = tmp_path / "outer"
    outer.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(outer)], check=True)
    try:
        (outer / "mp").mkdir()
        m = media("ext4")
        dev = m.attach()
        m.mount(outer / "mp")
        wait_for(lambda: agent.events_for("medium.mounted", dev), what="medium.mounted")
        # the folder holding the mount point goes away (lazy unmount of the parent)
        subprocess.run(["umount", "-l", str(outer)], check=True)
        ev = wait_for(lambda: agent.events_for("medium.unmounted", dev), what="medium.unmounted")[0]
        assert ev["details"]["mountpoint"] == str(outer / "mp")
        assert ev["details"]["mountpoint_exists"] is False
        m.mountpoint = None
    finally:
        subprocess.run(["umount", "-l", str(outer)], capture_output=True)
    assert agent.alive()


def test_registry_syntax_error_keeps_previous_registry(agent_factory, media):
    agent = agent_factory("classified", rescan_s=0.5)
    m = media("ext4")
    dev = m.attach()
    agent.register(dev, "secret", hosts="classified")
    good = agent.registry.read_text()
    m.unbind()
    agent.start()
    wait_for(lambda: agent.events("registry.loaded"), what="the good registry loaded first")
    agent.registry.write_text(good + "\n[[medium]\nid = broken\n")
    err = wait_for(lambda: agent.events("registry.error"), what="registry.error")[0]
    assert err["details"]["file"] == str(agent.registry)
    assert err["details"]["line"] == good.count("\n") + 2
    assert err["details"]["kept_previous"] is True and err["details"]["records_in_force"] == 1
    dev = m.bind()   # the registered medium arrives after the broken update
    allowed = wait_for(lambda: agent.events_for("medium.allowed", dev), what="still registered")[0]
    assert allowed["medium"]["registry_id"] == "M-TEST-1"
    assert agent.alive()


def test_forged_registration_counts_as_personal(agent_factory, media):
    agent = agent_factory("classified")
    m = media("ext4")
    dev = m.attach()
    agent.register(dev, "secret", hosts="classified")
    # someone edits the record (raises the level of their own stick) without the administrator's key
    agent.registry.write_text(agent.registry.read_text().replace('owner = "张三"', 'owner = "李四"'))
    agent.start()
    forged = wait_for(lambda: agent.events_for("medium.forged", dev), what="medium.forged")[0]
    assert forged["severity"] == "high" and forged["details"]["problem"] == "signature does not verify"
    denied = wait_for(lambda: agent.events_for("medium.denied", dev), what="medium.denied")[0]
    assert denied["medium"]["class"] == "personal" and denied["rule"] == "classified.personal"
    load_time = [e for e in agent.events("medium.forged") if e["details"].get("when") == "registry_load"]
    assert load_time and load_time[0]["details"]["registry_id"] == "M-TEST-1"


def test_level_lowering_is_refused(agent_factory, media):
    agent = agent_factory("classified", rescan_s=0.5)
    m = media("ext4")
    dev = m.attach()
    agent.register(dev, "secret", hosts="classified")
    agent.start()
    wait_for(lambda: agent.events_for("medium.allowed", dev), what="medium.allowed")
    agent.register(dev, "internal", hosts="classified")   # a properly signed update that lowers it
    ev = wait_for(lambda: agent.events("registry.level_lowering_refused"), what="refusal")[0]
    assert ev["details"] == {**ev["details"], "registry_id": "M-TEST-1", "requested": "internal", "kept": "secret"}
    out = subprocess.run([str(Path(os.sys.executable).parent / "baomi-agent"), "media", "list", "--json",
                          "--config", str(agent.config)], capture_output=True, text=True, check=True).stdout
    import json
    listed = [json.loads(line) for line in out.splitlines()]
    assert [x["level"] for x in listed if x["devnode"] == dev] == ["secret"]


def test_uevent_flood(agent_factory, media):
    """Hundreds of uevents in a few seconds: attach and detach loop devices as fast as possible."""
    agent = agent_factory("classified", rescan_s=1.0).start()
    m = media("ext4")
    m.attach()
    dev0 = m.devnode
    m.unbind()
    n = free_loop_number()
    node = f"/dev/loop{n}"
    cycles = 150
    attached = 0
    for _ in range(cycles):   # each cycle makes several kernel uevents (change events of the bdev)
        # a detach while the agent probes the device is deferred by the kernel: then the node is busy a moment
        if subprocess.run(["losetup", node, str(m.image)], capture_output=True).returncode == 0:
            attached += 1
        subprocess.run(["losetup", "-d", node], capture_output=True)
    assert attached > cycles // 2
    wait_for(lambda: int(Path(f"/sys/block/loop{n}/size").read_text()) == 0, what="last detach")
    # after the flood the view settles: every insertion got its removal, nothing is stuck
    def settled():
        ins = agent.events_for("medium.inserted", node)
        rem = agent.events_for("medium.removed", node)
        return ins and len(ins) == len(rem)
    wait_for(settled, deadline=30, what="inserted/removed to pair up")
    assert agent.alive()
    assert "Traceback" not in (agent.dir / "agent.log").read_text()
    # and the gate still acts on the next medium
    dev = m.bind()
    try_mount(m)
    wait_for(lambda: write_fails(m.mountpoint), what="gate after the flood")
    assert agent.events_for("medium.denied", dev)
    assert dev0


def test_kernel_uevent_source_hears_block_devices(media):
    """The fallback source (no udev daemon) receives the kernel's events for a real loop device."""
    import queue
    import threading

    from baomi.agent.media.uevents import UeventSource
    got: queue.Queue = queue.Queue()
    stop = threading.Event()
    src = UeventSource(got.put, lambda why: got.put(why), stop, use_udev=False)
    src.start()
    try:
        m = media("ext4")
        dev = m.attach()
        name = os.path.basename(dev)
        end = time.monotonic() + 10
        seen = []
        while time.monotonic() < end:
            try:
                ev = got.get(timeout=0.5)
            except queue.Empty:
                continue
            if not isinstance(ev, str) and ev.name == name:
                seen.append(ev)
                break
        assert seen and seen[0].subsystem == "block" and seen[0].action in ("add", "change")
    finally:
        stop.set()
        src.thread.join(timeout=5)
        src.close()


def test_stopping_the_kernel_uevent_source_reports_no_receive_error():
    """The agent's stop closed the netlink socket under the thread still polling it, which
    then logged "uevent loop error" and reported a receive error on every stop."""
    import queue
    import threading

    from baomi.agent.media.uevents import UeventSource
    got: queue.Queue = queue.Queue()
    stop = threading.Event()
    src = UeventSource(lambda ev: None, got.put, stop, use_udev=False)
    src.start()
    time.sleep(0.2)          # the thread is inside its poll
    stop.set()
    src.close()
    src.thread.join(timeout=5)
    assert not src.thread.is_alive()
    assert got.empty(), got.get()
