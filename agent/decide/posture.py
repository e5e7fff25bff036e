"""Host posture on classified hosts (004 rule 1 "涉密不上网", 002 "不得上网或设立共享"):
what counts as reaching outside the site, what the agent does about it, which
listeners and accounts are findings. Facts in, outcomes out; no I/O here."""
from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from typing import Iterable, Sequence

Net = ipaddress.IPv4Network | ipaddress.IPv6Network

# never leave the host or the link, whatever the site allows
_LOCAL_NETS: tuple[Net, ...] = tuple(ipaddress.ip_network(n) for n in (
    "127.0.0.0/8", "::1/128", "169.254.0.0/16", "fe80::/10", "224.0.0.0/4", "ff00::/8", "255.255.255.255/32"))
_LOOPBACK: tuple[Net, ...] = tuple(ipaddress.ip_network(n) for n in ("127.0.0.0/8", "::1/128"))


@dataclass(frozen=True)
class Link:
    index: int
    name: str
    kind: str = ""                 # "veth", "tun", "wireguard", "" for plain hardware …
    up: bool = False
    loopback: bool = False
    addresses: tuple[str, ...] = ()   # "10.1.2.3/24"


@dataclass(frozen=True)
class Route:
    dst: str                       # "0.0.0.0/0", "10.0.0.0/8"
    interface: str                 # the outgoing interface's name ("" when none)
    gateway: str | None = None
    table: int = 254


@dataclass(frozen=True)
class NetChange:
    """A route or interface that could reach outside the allowed networks."""
    reason: str                    # default_route, route_outside, interface_added, address_outside
    interface: str
    subject: str                   # the route's destination, the address, or the interface's name
    route: Route | None = None


def parse_networks(cidrs: Iterable[str]) -> tuple[Net, ...]:
    """CIDR strings as networks; ValueError names the bad one."""
    out = []
    for c in cidrs:
        try:
            out.append(ipaddress.ip_network(c, strict=False))
        except ValueError:
            raise ValueError(f"not a network in CIDR form (10.0.0.0/8, fd00::/8): {c!r}") from None
    return tuple(out)


def _within(net: Net, allowed: Sequence[Net]) -> bool:
    return any(net.version == a.version and net.subnet_of(a) for a in allowed)  # type: ignore[arg-type]


def is_outside(dst: str, allowed: Sequence[Net]) -> bool:
    """Could traffic to `dst` (an address or a network) leave the site? Inside only when the whole
    of it lies within one allowed network, or it never leaves the host or the link."""
    net = ipaddress.ip_network(dst, strict=False)
    return not (_within(net, _LOCAL_NETS) or _within(net, allowed))


def route_change(route: Route, allowed: Sequence[Net]) -> NetChange | None:
    if not is_outside(route.dst, allowed):
        return None
    default = ipaddress.ip_network(route.dst, strict=False).prefixlen == 0
    return NetChange("default_route" if default else "route_outside", route.interface, route.dst, route)


def link_changes(link: Link, allowed: Sequence[Net], new: bool) -> list[NetChange]:
    """An interface that appeared after the agent started (a USB modem, tethering, a VPN, Wi-Fi) is
    reported whatever its addresses; any interface holding an address outside the site is too."""
    if link.loopback:
        return []
    out = [NetChange("interface_added", link.name, link.name)] if new else []
    out += [NetChange("address_outside", link.name, a) for a in link.addresses if is_outside(a, allowed)]
    return out


def outside_changes(links: Iterable[Link], routes: Iterable[Route], known_links: set[str],
                    allowed: Sequence[Net]) -> list[NetChange]:
    """Everything in a snapshot that could reach outside; interfaces not in known_links are new."""
    out: list[NetChange] = []
    for link in links:
        out += link_changes(link, allowed, new=link.name not in known_links)
    for route in routes:
        change = route_change(route, allowed)
        if change:
            out.append(change)
    return out


def diff_changes(before: Iterable[NetChange], now: Iterable[NetChange]) -> list[NetChange]:
    """What is newly there: each change is reported once while it lasts, again when it comes back."""
    seen = {(c.reason, c.interface, c.subject) for c in before}
    return [c for c in now if (c.reason, c.interface, c.subject) not in seen]


def is_site_interface(link: Link | None, allowed: Sequence[Net]) -> bool:
    """An interface holding an address inside the allowed networks carries the site itself."""
    return link is not None and any(not is_outside(a.split("/")[0], allowed) and
                                    not _within(ipaddress.ip_network(a, strict=False), _LOCAL_NETS)
                                    for a in link.addresses)


@dataclass(frozen=True)
class ExternalOutcome:
    kind: str
    severity: str
    action: str                    # "audit" or "block"
    effect: str                    # "none", "link_down" (the interface) or "route_delete" (the route)
    reason: str


def decide_external(on_external: str, link: Link | None, route: Route | None,
                    allowed: Sequence[Net]) -> ExternalOutcome:
    """A probe answered from outside. "isolate" cuts the way it went: a foreign interface (modem,
    tethering, VPN) goes down; on the site's own interface only the offending route is deleted,
    so the host keeps reaching the site and the collector."""
    def out(action: str, effect: str, reason: str) -> ExternalOutcome:
        return ExternalOutcome("host.external_connection", "critical", action, effect, reason)

    if on_external != "isolate":
        return out("audit", "none", "audit")
    if link is None or link.loopback:
        return out("audit", "none", "no_interface")  # DNS-only probe, or nothing we may cut
    if is_site_interface(link, allowed):
        if route is None:
            return out("audit", "none", "site_interface_no_route")
        return out("block", "route_delete", "site_interface")
    return out("block", "link_down", "foreign_interface")


# -- listening services and shares -------------------------------------------------


@dataclass(frozen=True)
class Listener:
    address: str
    port: int
    protocol: str = "tcp"
    process: str = ""


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
        return True
    except ValueError:
        return False


def listener_allowed(listener: Listener, allowed: Iterable[str]) -> bool:
    """Allow-list entries: "22" (any address), "10.1.2.3:22" / "[fd00::1]:22" (one address),
    "sshd:22" (a process name), "*" as a port means any. Loopback listeners are never findings."""
    ip = ipaddress.ip_address(listener.address.split("%")[0])
    if any(ip in n for n in _LOOPBACK):
        return True
    for entry in allowed:
        left, sep, port = entry.rpartition(":")
        if port not in ("*", str(listener.port)):
            continue
        if not sep or left == "*":
            return True
        if _is_address(left) and ipaddress.ip_address(left.strip("[]")) == ip:
            return True
        if not _is_address(left) and left == listener.process:
            return True
    return False


def listener_entry_problem(entry: str) -> str | None:
    """Why an allowed_listeners entry is malformed, or None."""
    left, sep, port = entry.rpartition(":")
    if port != "*" and not (port.isdigit() and 0 < int(port) < 65536):
        return f"{entry!r}: expected PORT, ADDRESS:PORT or PROCESS:PORT (port 1-65535 or *)"
    if sep and not left:
        return f"{entry!r}: nothing before the ':'"
    return None


# -- passwords (002: accounts handling classified files change passwords every two months)

_NO_LOGIN_SHELLS = ("nologin", "false", "sync", "halt", "shutdown")
DAY_S = 86400.0


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    shell: str
    password: str | None           # the shadow hash field; None when the account has no shadow line
    last_change_day: int | None    # days since 1970-01-01; None when unset


@dataclass(frozen=True)
class PasswordFinding:
    account: str
    uid: int
    finding: str                   # empty_password, password_too_old, password_age_unknown
    severity: str
    age_days: int | None = None
    details: dict[str, object] = field(default_factory=dict)


def has_login_shell(shell: str) -> bool:
    return bool(shell) and not shell.rstrip("/").rsplit("/", 1)[-1] in _NO_LOGIN_SHELLS


def password_findings(acc: Account, today_day: int, max_age_days: int,
                      logged_in: bool = False) -> list[PasswordFinding]:
    """`logged_in`: the account has a login session now (utmp)."""
    if not has_login_shell(acc.shell) or acc.password is None:
        return []
    if acc.password == "":
        return [PasswordFinding(acc.name, acc.uid, "empty_password", "critical")]
    if acc.password.startswith(("!", "*")):
        # locked: no password login, so no password to age; but a session still open was
        # not ended by the lock (a key, a ticket, or it outlived the lock)
        return [PasswordFinding(acc.name, acc.uid, "locked_but_active", "high")] if logged_in else []
    if acc.last_change_day is None:
        return [PasswordFinding(acc.name, acc.uid, "password_age_unknown", "medium")]
    if acc.last_change_day == 0:
        return []  # the system forces a change at the next login
    age = today_day - acc.last_change_day
    if age > max_age_days:
        return [PasswordFinding(acc.name, acc.uid, "password_too_old", "high", age,
                                {"max_age_days": max_age_days})]
    return []


def due(last_reported: float | None, now: float, interval_s: float = DAY_S) -> bool:
    """At most one event per account and finding per interval (a day)."""
    return last_reported is None or now - last_reported >= interval_s or now < last_reported


# -- radios (004 rule 3: no wireless network cards, keyboards or mice on classified PCs)


@dataclass(frozen=True)
class RadioOutcome:
    block: bool
    kind: str | None
    severity: str


def decide_radio(soft_blocked: bool, blocked_by_us: bool) -> RadioOutcome:
    """Every radio stays soft-blocked (a hardware switch alone can be flipped back). One the agent
    blocked before and finds unblocked again was unblocked by someone: a security event."""
    if soft_blocked:
        return RadioOutcome(False, None, "info")
    if blocked_by_us:
        return RadioOutcome(True, "host.radio_unblocked", "high")
    return RadioOutcome(True, "host.radio_blocked", "medium")


# -- the self-inspection report (保密自查)

# each section's rule, quoted from the regulation it rests on
REPORT_RULES: dict[str, tuple[str, str]] = {
    "network": ("004 计算机规则 1", "不得将涉密计算机及其网络连接互联网或其他公共信息网。"),
    "wireless": ("004 计算机规则 3", "不得在涉密计算机上使用无线键盘、无线鼠标、无线网卡等无线设备。"),
    "sharing": ("002 保密规定 10", "专用电脑或数据库不得上网或设立共享。"),
    "passwords": ("002 信息系统安全 6", "涉及保密文件的用户名应每两个月改变密码一次。"),
    "usb": ("002 信息系统安全 10", "严禁使用来历不明的光盘和磁盘等存储设备;严禁私自修改计算机配置,拷贝带走计算机文件资料。"),
    "media": ("004 计算机规则 4", "不得在涉密与非涉密计算机之间交叉使用移动存储介质,或者在未采取防护措施的情况下将互联网上的资料下载拷贝到涉密计算机上。"),
    "screenlock": ("002 信息系统安全 7", "员工外出半小时以上需关闭电脑,暂时离开电脑应设置屏幕保护程序及密码保护,等待时间在5分钟之内。"),
    "at_rest": ("004 计算机规则 2", "不得在非涉密计算机尤其是在连接互联网或其他公共信息网的计算机上存储、处理涉密信息和使用涉密移动存储介质。"),
    "quarantine": ("002 信息系统安全 10", "严禁使用来历不明的光盘和磁盘等存储设备;严禁私自修改计算机配置,拷贝带走计算机文件资料。"),
    "chain": ("004 第三十七条", "对所有批量导出、复制、销毁用户个人信息的操作进行审查,并采取防泄密措施,同时记录进行操作的人员、时间、地点和事项,留作信息安全审计依据。"),
}
FAILING = ("high", "critical")
# the sections whose rules bind one host class only; the others bind every host
CLASS_SECTIONS: dict[str, str] = {"network": "classified", "wireless": "classified", "sharing": "classified",
                                  "passwords": "classified", "at_rest": "unclassified"}


def summarize(host_class: str, findings: Sequence[dict[str, object]]) -> dict[str, object]:
    """Pass or fail and why: a host fails on any high or critical finding of a section whose rule
    binds it. The classified-host rules (network, wireless, sharing, passwords) do not bind an
    unclassified host, whose findings there are for information (`applies` false); the rule on
    classified files at rest binds only unclassified hosts."""
    bad = [f for f in findings if f.get("severity") in FAILING
           and CLASS_SECTIONS.get(str(f["section"]), host_class) == host_class]
    return {"result": "fail" if bad else "pass", "applies": host_class == "classified",
            "reasons": sorted({f"{f['section']}: {f['finding']}" for f in bad})}


# -- the report's summary for the collector (check.report)

REPORT_EVENT_VERSION = 2   # 2: the whole report attached (details.report) when it is small enough
# findings that say a section could not be looked at, not that something is wrong
UNKNOWN_FINDINGS: frozenset[tuple[str, str]] = frozenset({("passwords", "unreadable"), ("at_rest", "never_scanned")})
_RANK = {s: i for i, s in enumerate(("info", "low", "medium", "high", "critical"))}
# what names a finding in one line: the first of these its details hold
_SUBJECT_KEYS = ("subject", "probe", "path", "share", "name", "radio", "serial", "product", "account", "port", "error")
MAX_EVENT_FINDINGS = 50
MAX_ATTACHED_REPORT = 48 * 1024   # bytes of JSON; a larger report stays on the host only
MAX_SUMMARY = 200


def _subject(f: dict[str, object]) -> str:
    d = f.get("details")
    if isinstance(d, dict):
        user = d.get("user")
        if isinstance(user, dict) and user.get("name"):
            return str(user["name"])
        for key in _SUBJECT_KEYS:
            if d.get(key) not in (None, "", []):
                return str(d[key])
    return ""


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def section_status(section: str, host_class: str, findings: Sequence[dict[str, object]]) -> dict[str, object]:
    """One section of the report in a line: ok (no findings), problem (findings), unknown (the
    section could not be looked at: shadow unreadable, no discovery pass yet)."""
    mine = [f for f in findings if f["section"] == section]
    unknown = [f for f in mine if (section, f["finding"]) in UNKNOWN_FINDINGS]
    problems = [f for f in mine if (section, f["finding"]) not in UNKNOWN_FINDINGS]
    status = "problem" if problems else "unknown" if unknown else "ok"
    worst = max((str(f["severity"]) for f in mine), key=lambda s: _RANK.get(s, 0), default=None)
    if mine:
        names: dict[str, list[str]] = {}
        for f in mine:
            names.setdefault(str(f["finding"]), []).append(_subject(f))
        parts = []
        for name, subjects in names.items():
            shown = [s for s in subjects if s][:3]
            more = len(subjects) - len(shown) if shown else 0
            parts.append(f"{name} ×{len(subjects)}" if not shown else
                         f"{name} ({', '.join(shown)}{f', +{more}' if more else ''})")
        summary = "; ".join(parts)
    else:
        summary = "no findings"
    return {"id": section, "status": status, "applies": CLASS_SECTIONS.get(section, host_class) == host_class,
            "findings": len(mine), "severity": worst, "summary": _clip(summary, MAX_SUMMARY)}


def report_event(report: dict[str, object]) -> tuple[str, dict[str, object]]:
    """The self-inspection report as the check.report event's (severity, details): each section's
    status in one line, counts, and the findings in short (at most MAX_EVENT_FINDINGS; the facts
    and the rules' text stay in the report on the host). The severity is the worst finding of a
    section that binds the host, info when there is none."""
    host = report["host"] if isinstance(report.get("host"), dict) else {}
    host_class = str(host.get("class", "unclassified"))  # type: ignore[union-attr]
    findings: list[dict[str, object]] = list(report.get("findings") or [])  # type: ignore[call-overload]
    sections = list(report.get("sections") or REPORT_RULES)  # type: ignore[call-overload]
    checks = [section_status(s, host_class, findings) for s in sections]
    binding = [f for f in findings if CLASS_SECTIONS.get(str(f["section"]), host_class) == host_class]
    severity = max((str(f["severity"]) for f in binding), key=lambda s: _RANK.get(s, 0), default="info")
    by_severity: dict[str, int] = {}
    for f in findings:
        by_severity[str(f["severity"])] = by_severity.get(str(f["severity"]), 0) + 1
    status_counts = {s: sum(c["status"] == s for c in checks) for s in ("ok", "problem", "unknown")}
    summary = report.get("summary") if isinstance(report.get("summary"), dict) else {}
    short = [{"section": f["section"], "finding": f["finding"], "severity": f["severity"],
              "subject": _clip(_subject(f), MAX_SUMMARY)} for f in findings[:MAX_EVENT_FINDINGS]]
    details: dict[str, object] = {
        "format": {"report": report.get("report"), "version": report.get("version"),
                   "event_version": REPORT_EVENT_VERSION},
        "report_time": report.get("time"), "agent_version": report.get("agent_version"),
        "policy_version": report.get("policy_version"),
        "result": summary.get("result"), "applies": summary.get("applies"),  # type: ignore[union-attr]
        "reasons": list(summary.get("reasons") or [])[:MAX_EVENT_FINDINGS],  # type: ignore[union-attr]
        "counts": {"checks": len(checks), **status_counts, "findings": len(findings),
                   "binding": len(binding), "by_severity": by_severity},
        "checks": checks,
        "findings": short, "findings_omitted": max(0, len(findings) - len(short)),
    }
    size = len(json.dumps(report, ensure_ascii=False, sort_keys=True, default=str).encode("utf-8"))
    if size <= MAX_ATTACHED_REPORT:   # the console offers it as the host's check.json
        details["report"] = report
    else:
        details["report_omitted"] = {"bytes": size, "limit": MAX_ATTACHED_REPORT}
    return severity, details


# -- the heartbeat's posture summary (the console's host page)


def posture_status(status: dict[str, object] | None, now: float) -> dict[str, object] | None:
    """What the posture component found last, in short, for the heartbeat: the network state
    (`external`: a probe answers, 违规外联; `outside_route`: a route or address outside the site
    but no probe answers; `isolated`; `unknown`: not watched), the radios kept blocked, the shares
    and listeners found, whether the accounts could be read. None when posture is not watched."""
    if status is None:
        return None
    reachable = [str(p) for p in status.get("reachable") or []][:10]  # type: ignore[attr-defined]
    outside = [str(p) for p in status.get("outside_routes") or []][:10]  # type: ignore[attr-defined]
    watched = "outside_routes" in status or "last_probe" in status
    network = "external" if reachable else "outside_route" if outside else "isolated" if watched else "unknown"
    out: dict[str, object] = {"network": network, "reachable": reachable, "outside": outside}
    last = status.get("last_probe")
    if isinstance(last, (int, float)):
        out["last_probe_age_s"] = round(max(0.0, now - last), 1)
    for key in ("radios", "sharing", "passwords_readable"):
        if key in status:
            out[key] = status[key]
    return out
