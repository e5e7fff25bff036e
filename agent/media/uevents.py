"""Device events: udev through pyudev where a udev daemon runs, kernel uevents otherwise.

Both sources run our own poll loop (no MonitorObserver thread, which can die
under bursts), enlarge the socket's receive buffer, and report a receive error
(ENOBUFS: the kernel dropped events) so the component re-enumerates sysfs.
"""
from __future__ import annotations

import errno
import logging
import os
import select
import socket
import threading
from dataclasses import dataclass, field
from typing import Callable

log = logging.getLogger(__name__)

NETLINK_KOBJECT_UEVENT = 15
KERNEL_GROUP = 1
SO_RCVBUFFORCE = 33
RCVBUF = 16 * 1024 * 1024
SUBSYSTEMS = ("block", "usb")


@dataclass
class Uevent:
    action: str
    devpath: str
    subsystem: str
    devname: str = ""
    devtype: str = ""
    props: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.devname.rsplit("/", 1)[-1] if self.devname else self.devpath.rsplit("/", 1)[-1]


def parse_kernel_uevent(data: bytes) -> Uevent | None:
    """Parse one kernel uevent datagram ("action@devpath\\0KEY=VALUE\\0..."); None if malformed
    or if it is a udev daemon message (those start with "libudev")."""
    if not data or data.startswith(b"libudev"):
        return None
    parts = data.split(b"\0")
    head = parts[0].decode("utf-8", "replace")
    if "@" not in head:
        return None
    props: dict[str, str] = {}
    for p in parts[1:]:
        key, sep, value = p.decode("utf-8", "replace").partition("=")
        if sep:
            props[key] = value
    action = props.get("ACTION") or head.split("@", 1)[0]
    devpath = props.get("DEVPATH") or head.split("@", 1)[1]
    if not action or not devpath:
        return None
    return Uevent(action=action, devpath=devpath, subsystem=props.get("SUBSYSTEM", ""),
                  devname=props.get("DEVNAME", ""), devtype=props.get("DEVTYPE", ""), props=props)


def udev_running() -> bool:
    return os.path.exists("/run/udev/control")


class UeventSource:
    """Runs a thread that calls on_event(Uevent) for block/usb events and on_overflow(reason)
    after a receive error."""

    def __init__(self, on_event: Callable[[Uevent], None], on_overflow: Callable[[str], None],
                 stopping: threading.Event, use_udev: bool | None = None):
        self.on_event, self.on_overflow, self.stopping = on_event, on_overflow, stopping
        self.use_udev = udev_running() if use_udev is None else use_udev
        self.kind = "udev" if self.use_udev else "kernel"
        self._open()
        self.thread = threading.Thread(target=self._run, name=f"baomi-uevents-{self.kind}", daemon=True)

    def _open(self) -> None:
        if self.use_udev:
            import pyudev
            self.monitor = pyudev.Monitor.from_netlink(pyudev.Context(), source="udev")
            for sub in SUBSYSTEMS:
                self.monitor.filter_by(sub)
            try:
                self.monitor.set_receive_buffer_size(RCVBUF)
            except Exception as exc:  # needs CAP_NET_ADMIN
                log.warning("cannot enlarge the udev receive buffer: %s", exc)
            self.monitor.start()
            self.fd = self.monitor.fileno()
        else:
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC,
                                      NETLINK_KOBJECT_UEVENT)
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF)
            except OSError:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
            self.sock.bind((0, KERNEL_GROUP))
            self.sock.setblocking(False)
            self.fd = self.sock.fileno()

    def start(self) -> None:
        self.thread.start()

    def close(self) -> None:
        """Once `stopping` is set: the thread leaves within one poll interval, and only then
        is the socket closed (closed under it, its next receive fails, and a stopping agent
        logged a receive error)."""
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(timeout=2)
        if not self.use_udev:
            self.sock.close()

    def _drain_kernel(self) -> None:
        while True:
            try:
                data = self.sock.recv(64 * 1024)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    self.on_overflow("kernel uevent socket overflow (ENOBUFS)")
                    continue
                raise
            ev = parse_kernel_uevent(data)
            if ev and ev.subsystem in SUBSYSTEMS:
                self.on_event(ev)

    def _drain_udev(self) -> None:
        while True:
            try:
                dev = self.monitor.poll(timeout=0)
            except OSError as exc:
                self.on_overflow(f"udev receive error ({exc})")
                continue
            if dev is None:
                return
            self.on_event(Uevent(action=dev.action or "change", devpath=dev.device_path,
                                 subsystem=dev.subsystem or "", devname=dev.device_node or "",
                                 devtype=dev.device_type or "", props=dict(dev.properties)))

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        while not self.stopping.is_set():
            try:
                if not poller.poll(500):
                    continue
                self._drain_udev() if self.use_udev else self._drain_kernel()
            except Exception as exc:
                log.exception("uevent loop error")
                self.on_overflow(f"uevent receive error ({type(exc).__name__}: {exc})")
                self.stopping.wait(0.2)
