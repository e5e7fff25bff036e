#!/usr/bin/env python3
"""How long the device gate takes: from a loop block device appearing (losetup) to it
being unwritable (BLKROGET reports read-only) on a classified host with
`baomi-agent run` going. The peer figure, measured in the same run, is when a plain
kernel-uevent listener in this script hears of the device: the part of the delay
the agent cannot shorten.

    sudo .venv/bin/python bench/gate.py [--runs 20] [--fstype ext4|exfat]

Prints median and worst (ms). Never part of the test verdict.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from baomi.agent.media.gate import is_read_only  # noqa: E402
from baomi.agent.media.uevents import KERNEL_GROUP, NETLINK_KOBJECT_UEVENT, parse_kernel_uevent  # noqa: E402

AGENT = str(Path(sys.executable).parent / "baomi-agent")
LOOP_RANGE = range(400, 500)


def free_loop() -> str:
    for n in LOOP_RANGE:
        try:
            if int(Path(f"/sys/block/loop{n}/size").read_text()) == 0:
                return f"/dev/loop{n}"
        except FileNotFoundError:
            return f"/dev/loop{n}"
    raise SystemExit("no free loop device in loop400-loop499")


def wait_uevent(sock: socket.socket, name: str, deadline: float) -> float | None:
    sock.settimeout(0.05)
    while time.monotonic() < deadline:
        try:
            ev = parse_kernel_uevent(sock.recv(65536))
        except socket.timeout:
            continue
        if ev and ev.subsystem == "block" and ev.name == name:
            return time.monotonic()
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--fstype", choices=("ext4", "exfat"), default="ext4")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root (loop devices)")
    tmp = Path(tempfile.mkdtemp(prefix="baomi-bench-gate-"))
    img = tmp / "medium.img"
    with open(img, "wb") as f:
        f.truncate(32 * 1024 * 1024)
    mkfs = ["mkfs.ext4", "-q", "-F"] if args.fstype == "ext4" else ["mkfs.exfat"]
    subprocess.run([*mkfs, str(img)], check=True, capture_output=True)
    (tmp / "agent.toml").write_text(
        f'[host]\nclass = "classified"\n[paths]\nstate_dir = "{tmp / "state"}"\n'
        f'[media]\nextra_removable = ["loop4[0-9][0-9]"]\nregistry = "{tmp / "media.toml"}"\n'
        '[posture]\nenabled = false\n')  # the machine's own network and radios stay as they are
    log = open(tmp / "agent.log", "wb")
    agent = subprocess.Popen([AGENT, "run", "--config", str(tmp / "agent.toml")], stdout=log, stderr=log)
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_KOBJECT_UEVENT)
    sock.bind((0, KERNEL_GROUP))
    gate_ms, uevent_ms, failed = [], [], 0
    try:
        time.sleep(2.0)  # agent start-up
        for _ in range(args.runs):
            dev = free_loop()
            t0 = time.monotonic()
            subprocess.run(["losetup", dev, str(img)], check=True)
            deadline = t0 + 10
            t_ev = wait_uevent(sock, os.path.basename(dev), deadline)
            while time.monotonic() < deadline and not is_read_only(dev):
                time.sleep(0.001)
            t1 = time.monotonic()
            if is_read_only(dev):
                gate_ms.append((t1 - t0) * 1000)
            else:
                failed += 1
            if t_ev:
                uevent_ms.append((t_ev - t0) * 1000)
            subprocess.run(["blockdev", "--setrw", dev], capture_output=True)
            subprocess.run(["losetup", "-d", dev], capture_output=True)
            time.sleep(0.5)  # let the agent see the removal before the next run
    finally:
        agent.terminate()
        agent.wait(timeout=20)
        sock.close()
        log.close()
    out = subprocess.run([AGENT, "events", "--config", str(tmp / "agent.toml"), "--json", "--kind", "medium.denied"],
                         capture_output=True, text=True).stdout
    denied = len([json.loads(line) for line in out.splitlines() if line.strip()])

    def fmt(xs: list[float]) -> str:
        return f"median {statistics.median(xs):7.1f} ms   worst {max(xs):7.1f} ms" if xs else "no data"
    print(f"gate ({args.fstype}, {args.runs} runs, classified host, personal medium)")
    print(f"  losetup -> block device read-only (agent):   {fmt(gate_ms)}")
    print(f"  losetup -> kernel uevent heard (peer):       {fmt(uevent_ms)}")
    print(f"  runs not gated within 10 s: {failed}; medium.denied events: {denied}")
    subprocess.run(["rm", "-rf", str(tmp)])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
