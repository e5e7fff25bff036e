"""The kernel's view of links, addresses and routes (pyroute2), a wake-up on every change (a
plain rtnetlink group subscription), and the two isolation effects."""
from __future__ import annotations

import ipaddress
import select
import socket
import threading
import time
from dataclasses import dataclass

from pyroute2 import IPRoute

from ..decide.posture import Link, Route

# rtnetlink multicast groups (linux/rtnetlink.h): links, v4/v6 addresses and routes
_GROUPS = 0x1 | 0x10 | 0x40 | 0x100 | 0x400
_IFF_UP, _IFF_LOOPBACK = 0x1, 0x8
_RTN_UNICAST, _RT_TABLE_LOCAL = 1, 255


@dataclass(frozen=True)
class Snapshot:
    links: dict[str, Link]
    routes: tuple[Route, ...]


class ChangeWatch:
    """Wakes up when any link, address or route changes. The messages are not parsed: a change
    means "take a fresh snapshot", so a lost message (ENOBUFS under a burst) loses nothing."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        self._sock.bind((0, _GROUPS))
        self._sock.setblocking(False)

    def wait(self, timeout_s: float, settle_s: float = 0.05) -> bool:
        """True when something changed within timeout_s; a burst (link, address, routes) is
        read as one change by draining it for settle_s."""
        if not select.select([self._sock], [], [], timeout_s)[0]:
            return False
        end = time.monotonic() + 10 * settle_s  # endless churn still gets a snapshot now and then
        while time.monotonic() < end and select.select([self._sock], [], [], settle_s)[0]:
            try:
                self._sock.recv(1 << 16)
            except BlockingIOError:
                break
            except OSError:  # ENOBUFS: messages lost, the snapshot covers them
                continue
        return True

    def close(self) -> None:
        self._sock.close()


class Kernel:
    """Dumps and effects through one rtnetlink handle (pyroute2), one caller at a time."""

    def __init__(self) -> None:
        self._ipr = IPRoute()
        self._lock = threading.Lock()

    def snapshot(self) -> Snapshot:
        with self._lock:
            raw_links = self._ipr.get_links()
            raw_addrs = self._ipr.get_addr()
            raw_routes = self._ipr.get_routes()
        addrs: dict[int, list[str]] = {}
        for a in raw_addrs:
            addrs.setdefault(a["index"], []).append(f"{a.get('address')}/{a['prefixlen']}")
        links = {}
        by_index = {}
        for m in raw_links:
            name = m.get("ifname")
            link = Link(m["index"], name, m.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND") or "",
                        up=bool(m["flags"] & _IFF_UP), loopback=bool(m["flags"] & _IFF_LOOPBACK),
                        addresses=tuple(addrs.get(m["index"], ())))
            links[name] = link
            by_index[m["index"]] = name
        routes = tuple(_route(r, by_index) for r in raw_routes
                       if r["type"] == _RTN_UNICAST and r.get("table") != _RT_TABLE_LOCAL)
        return Snapshot(links, routes)

    def route_to(self, address: str, snap: Snapshot) -> Route | None:
        """The route the kernel takes to `address`, as the configured route it matched."""
        try:
            with self._lock:
                got = self._ipr.route("get", dst=address)
        except Exception:  # the route went away since the probe answered
            return None
        if not got:
            return None
        g = got[0]
        oif = {l.index: l.name for l in snap.links.values()}.get(g.get("oif") or 0, "")
        ip = ipaddress.ip_address(address)
        candidates = [r for r in snap.routes if r.interface == oif and r.table == g.get("table", 254)
                      and ip in ipaddress.ip_network(r.dst, strict=False)]
        if candidates:
            return max(candidates, key=lambda r: ipaddress.ip_network(r.dst, strict=False).prefixlen)
        return Route(f"{address}/{ip.max_prefixlen}", oif, g.get("gateway"), g.get("table", 254))

    def link_down(self, link: Link) -> None:
        with self._lock:
            self._ipr.link("set", index=link.index, state="down")

    def route_delete(self, route: Route, link: Link) -> None:
        kw: dict[str, object] = {"dst": route.dst, "oif": link.index, "table": route.table}
        if route.gateway:
            kw["gateway"] = route.gateway
        with self._lock:
            self._ipr.route("del", **kw)

    def close(self) -> None:
        self._ipr.close()


def _route(r: object, by_index: dict[int, str]) -> Route:
    get = r.get  # type: ignore[attr-defined]
    family_any = "0.0.0.0" if r["family"] == socket.AF_INET else "::"  # type: ignore[index]
    dst = f"{get('dst') or family_any}/{r['dst_len']}"  # type: ignore[index]
    oif = get("oif")
    gateway = get("gateway")
    if oif is None and get("multipath"):  # ECMP: name the first hop
        hop = get("multipath")[0]
        oif, gateway = hop.get("oif"), hop.get("gateway")
    return Route(dst, by_index.get(oif or 0, ""), gateway, get("table") or 254)
