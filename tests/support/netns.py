"""A small network lab in namespaces of its own, so the host's networking is never touched.

    agent ns  site0 10.77.0.2/24  ── veth ──  site0p 10.77.0.1/24  outside ns
                  fd77::2/64                         fd77::1/64
                                                 lo  198.51.100.10/32, 2001:db8:100::10/128
                                                     a TCP listener on [::]:8443 (v4 and v6)

The outside namespace answers the probe only once the agent's namespace has a route to it
(a default route via the site, or via a "modem" veth added later). Everything is removed
on exit, also when the test failed.
"""
from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

import pytest

OUTSIDE_IP, OUTSIDE_PORT = "198.51.100.10", 8443
PROBE = f"{OUTSIDE_IP}:{OUTSIDE_PORT}"
OUTSIDE_IP6 = "2001:db8:100::10"
PROBE6 = f"[{OUTSIDE_IP6}]:{OUTSIDE_PORT}"
SITE, SITE6 = "10.77.0.0/16", "fd77::/64"
_count = itertools.count()

# accept and close, forever: the fake outside service the probe reaches
_LISTENER = ("import socket,sys\ns=socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
             "s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)\n"
             "s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(64); print('ready', flush=True)\n"
             "while True:\n    c, _ = s.accept(); c.close()\n")


def need_netns() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces)")
    if shutil.which("ip") is None:
        pytest.skip("needs ip (iproute2) on PATH")


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    res = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)
    if check and res.returncode:
        raise RuntimeError(f"ip {' '.join(args)}: {res.stderr.strip()}")
    return res


@dataclass
class Lab:
    agent: str
    outside: str
    procs: list[subprocess.Popen] = field(default_factory=list)

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """`ip` inside the agent's namespace."""
        return ip("-n", self.agent, *args, check=check)

    def exec(self, ns: str | None = None) -> list[str]:
        return ["ip", "netns", "exec", ns or self.agent]

    def add_default_route(self, via: str = "10.77.0.1") -> None:
        self.run("-6" if ":" in via else "-4", "route", "add", "default", "via", via)

    def del_default_route(self, v6: bool = False) -> None:
        self.run("-6" if v6 else "-4", "route", "del", "default")

    def add_modem(self, name: str = "wwan0") -> None:
        """A veth into the outside namespace standing in for a USB 4G modem or tethering:
        an interface of its own, an address outside the site, a way out once routed."""
        self.run("link", "add", name, "type", "veth", "peer", "name", f"{name}p", "netns", self.outside)
        self.run("addr", "add", "100.64.0.2/30", "dev", name)
        self.run("link", "set", name, "up")
        ip("-n", self.outside, "addr", "add", "100.64.0.1/30", "dev", f"{name}p")
        ip("-n", self.outside, "link", "set", f"{name}p", "up")

    def link_up(self, name: str) -> bool:
        return "UP" in self.run("-o", "link", "show", name).stdout.split(">")[0]

    def connects(self, address: str, port: int = OUTSIDE_PORT) -> bool:
        """Does a TCP connect from the agent's namespace get through?"""
        code = f"import socket; socket.create_connection(({address!r}, {port}), timeout=3).close()"
        return subprocess.run([*self.exec(), sys.executable, "-c", code], capture_output=True,
                              timeout=20).returncode == 0

    def default_routes(self) -> str:
        return self.run("route", "show", "default").stdout.strip()


def sweep_stale() -> None:
    """Namespaces of a test run that was killed outright (SIGKILL leaves no `finally`)."""
    for line in ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.strip() else ""
        parts = name.split("-")
        if len(parts) == 3 and parts[0] in ("bpa", "bpo") and parts[1].isdigit() and \
                not os.path.exists(f"/proc/{parts[1]}"):
            ip("netns", "del", name, check=False)


@contextmanager
def lab() -> Iterator[Lab]:
    need_netns()
    sweep_stale()
    n = f"{os.getpid()}-{next(_count)}"
    the = Lab(f"bpa-{n}", f"bpo-{n}")
    made: list[str] = []
    try:
        for ns in (the.agent, the.outside):
            ip("netns", "add", ns)
            made.append(ns)
            ip("-n", ns, "link", "set", "lo", "up")
        the.run("link", "add", "site0", "type", "veth", "peer", "name", "site0p", "netns", the.outside)
        the.run("addr", "add", "10.77.0.2/24", "dev", "site0")
        the.run("link", "set", "site0", "up")
        ip("-n", the.outside, "addr", "add", "10.77.0.1/24", "dev", "site0p")
        ip("-n", the.outside, "addr", "add", f"{OUTSIDE_IP}/32", "dev", "lo")
        ip("-n", the.outside, "link", "set", "site0p", "up")
        # IPv6 too, without duplicate address detection so the addresses work at once
        the.run("addr", "add", "fd77::2/64", "dev", "site0", "nodad")
        ip("-n", the.outside, "addr", "add", "fd77::1/64", "dev", "site0p", "nodad")
        ip("-n", the.outside, "addr", "add", f"{OUTSIDE_IP6}/128", "dev", "lo")
        # on every address, v4 and v6: the outside ones, and the site's own that stay reachable
        listener = subprocess.Popen([*the.exec(the.outside), sys.executable, "-c", _LISTENER, "::",
                                     str(OUTSIDE_PORT)], stdout=subprocess.PIPE, text=True)
        the.procs.append(listener)
        assert listener.stdout and listener.stdout.readline().strip() == "ready"
        yield the
    finally:
        for p in the.procs:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=10)
        for ns in made:  # deleting a namespace deletes its interfaces and the veths' peers
            ip("netns", "del", ns, check=False)


def wait_for(fn, timeout_s: float, every_s: float = 0.1):
    """fn()'s first truthy value within timeout_s, else the last (falsy) one."""
    end = time.monotonic() + timeout_s
    while True:
        value = fn()
        if value or time.monotonic() > end:
            return value
        time.sleep(every_s)
