"""agent/decide/posture.py: what counts as outside the site, what isolation does, which
listeners and accounts are findings, and how often they are reported."""
from __future__ import annotations

from pathlib import Path

import pytest

from baomi.agent.decide.posture import (REPORT_RULES, Account, Link, Listener, NetChange, Route,
                                        decide_external, diff_changes, due, is_outside, link_changes,
                                        listener_allowed, listener_entry_problem, outside_changes,
                                        parse_networks, password_findings, route_change, summarize)
from baomi.common.catalogue import KINDS

SITE = parse_networks(["10.0.0.0/8", "fd00:aaaa::/32"])


@pytest.mark.parametrize("dst,outside", [
    ("0.0.0.0/0", True), ("::/0", True),
    ("10.0.0.0/8", False), ("10.20.0.0/16", False), ("10.1.2.3", False),
    ("0.0.0.0/1", True),                  # half the internet (a VPN's split default)
    ("8.0.0.0/7", True),                  # covers the site and more: could reach outside
    ("192.168.1.0/24", True), ("100.64.0.0/10", True),
    ("127.0.0.0/8", False), ("169.254.0.0/16", False), ("fe80::/64", False), ("224.0.0.0/4", False),
    ("fd00:aaaa:1::/48", False), ("fd00:bbbb::/32", True),
])
def test_outside_table(dst: str, outside: bool) -> None:
    assert is_outside(dst, SITE) is outside


def test_networks_must_be_cidr() -> None:
    with pytest.raises(ValueError, match="not a network"):
        parse_networks(["10.0.0.0/8", "intranet"])
    assert is_outside("10.1.0.0/16", ()) is True  # nothing allowed: every routed network is outside


@pytest.mark.parametrize("route,reason", [
    (Route("0.0.0.0/0", "eth0", "10.0.0.1"), "default_route"),
    (Route("::/0", "wwan0", "fe80::1"), "default_route"),
    (Route("192.168.8.0/24", "usb0"), "route_outside"),
    (Route("10.9.0.0/16", "eth0", "10.0.0.1"), None),
    (Route("fe80::/64", "eth0"), None),
])
def test_route_table(route: Route, reason: str | None) -> None:
    change = route_change(route, SITE)
    assert (change.reason if change else None) == reason
    if change:
        assert (change.interface, change.subject, change.route) == (route.interface, route.dst, route)


@pytest.mark.parametrize("link,new,reasons", [
    (Link(5, "usb0", addresses=()), True, ["interface_added"]),
    (Link(5, "wwan0", addresses=("100.64.3.4/30",)), True, ["interface_added", "address_outside"]),
    (Link(2, "eth0", addresses=("10.1.2.3/24", "fe80::1/64")), False, []),
    (Link(2, "eth0", addresses=("10.1.2.3/24", "192.168.0.7/24")), False, ["address_outside"]),
    (Link(1, "lo", loopback=True, addresses=("127.0.0.1/8",)), True, []),
])
def test_link_table(link: Link, new: bool, reasons: list[str]) -> None:
    assert [c.reason for c in link_changes(link, SITE, new)] == reasons


SITE_NIC = Link(2, "eth0", addresses=("10.1.2.3/24",))
MODEM = Link(7, "wwan0", kind="", addresses=("100.64.3.4/30",))
DEFAULT = Route("0.0.0.0/0", "eth0", "10.1.2.1")


def test_a_snapshot_outside() -> None:
    links = [Link(1, "lo", loopback=True, addresses=("127.0.0.1/8",)), SITE_NIC, MODEM]
    routes = [Route("10.1.2.0/24", "eth0"), DEFAULT, Route("100.64.3.4/30", "wwan0")]
    got = outside_changes(links, routes, {"lo", "eth0"}, SITE)
    assert [(c.reason, c.interface, c.subject) for c in got] == [
        ("interface_added", "wwan0", "wwan0"), ("address_outside", "wwan0", "100.64.3.4/30"),
        ("default_route", "eth0", "0.0.0.0/0"), ("route_outside", "wwan0", "100.64.3.4/30")]


def test_changes_are_reported_once_while_they_last() -> None:
    a = NetChange("default_route", "eth0", "0.0.0.0/0")
    b = NetChange("interface_added", "usb0", "usb0")
    assert diff_changes([], [a]) == [a]
    assert diff_changes([a], [a, b]) == [b]
    assert diff_changes([a, b], [b]) == []
    assert diff_changes([b], [a, b]) == [a]  # the default route came back


@pytest.mark.parametrize("mode,link,route,action,effect,reason", [
    ("audit", MODEM, DEFAULT, "audit", "none", "audit"),
    ("isolate", MODEM, Route("0.0.0.0/0", "wwan0", "100.64.3.5"), "block", "link_down", "foreign_interface"),
    ("isolate", Link(8, "tun0", kind="tun"), None, "block", "link_down", "foreign_interface"),
    ("isolate", SITE_NIC, DEFAULT, "block", "route_delete", "site_interface"),
    ("isolate", SITE_NIC, None, "audit", "none", "site_interface_no_route"),
    ("isolate", None, None, "audit", "none", "no_interface"),
    ("isolate", Link(1, "lo", loopback=True, addresses=("127.0.0.1/8",)), None, "audit", "none", "no_interface"),
])
def test_external_table(mode, link, route, action, effect, reason) -> None:
    o = decide_external(mode, link, route, SITE)
    assert (o.kind, o.severity, o.action, o.effect, o.reason) == \
        ("host.external_connection", "critical", action, effect, reason)
    assert o.kind in KINDS and KINDS[o.kind].security


ALLOW = ["22", "10.1.2.3:443", "[fd00:aaaa::5]:8080", "cupsd:631", "*:9100", "chronyd:*"]


@pytest.mark.parametrize("listener,allowed", [
    (Listener("0.0.0.0", 22), True),
    (Listener("10.1.2.3", 443), True),
    (Listener("0.0.0.0", 443), False),           # all addresses is more than the one allowed
    (Listener("fd00:aaaa::5", 8080), True),
    (Listener("::", 8080), False),
    (Listener("0.0.0.0", 631, process="cupsd"), True),
    (Listener("0.0.0.0", 631, process="python3"), False),
    (Listener("10.1.2.3", 9100), True),
    (Listener("0.0.0.0", 323, process="chronyd"), True),
    (Listener("0.0.0.0", 8000, process="python3"), False),  # python -m http.server
    (Listener("127.0.0.1", 8000), True), (Listener("::1", 5432), True),  # loopback is never a finding
    (Listener("127.0.0.53", 53), True),
])
def test_listener_table(listener: Listener, allowed: bool) -> None:
    assert listener_allowed(listener, ALLOW) is allowed


@pytest.mark.parametrize("entry,ok", [("22", True), ("sshd:22", True), ("10.0.0.1:*", True), ("[::]:22", True),
                                      ("ssh", False), ("22/tcp", False), (":22", False), ("0", False),
                                      ("70000", False)])
def test_listener_entries(entry: str, ok: bool) -> None:
    assert (listener_entry_problem(entry) is None) is ok


TODAY = 20_000


@pytest.mark.parametrize("acc,findings", [
    (Account("alice", 1000, "/bin/bash", "$6$x", TODAY - 10), []),
    (Account("alice", 1000, "/bin/bash", "$6$x", TODAY - 61), [("password_too_old", "high", 61)]),
    (Account("alice", 1000, "/bin/bash", "$6$x", TODAY - 60), []),
    (Account("bob", 1001, "/bin/zsh", "", TODAY), [("empty_password", "critical", None)]),
    (Account("carol", 1002, "/bin/bash", "!$6$x", TODAY - 900), []),      # locked
    (Account("daemon", 1, "/usr/sbin/nologin", "", None), []),             # no login shell
    (Account("sync", 4, "/bin/sync", "*", 0), []),
    (Account("dave", 1003, "/bin/bash", "$6$x", None), [("password_age_unknown", "medium", None)]),
    (Account("erin", 1004, "/bin/bash", "$6$x", 0), []),                   # must change at next login
    (Account("frank", 1005, "/bin/bash", None, None), []),                 # no shadow line
    (Account("gina", 1006, "", "$6$x", TODAY - 100), []),
])
def test_password_table(acc: Account, findings: list) -> None:
    got = password_findings(acc, TODAY, 60)
    assert [(f.finding, f.severity, f.age_days) for f in got] == findings
    assert all(f.account == acc.name and f.uid == acc.uid for f in got)


def test_a_locked_account_with_an_open_session_is_a_finding() -> None:
    carol = Account("carol", 1002, "/bin/bash", "!$6$x", TODAY - 900)
    assert [(f.finding, f.severity) for f in password_findings(carol, TODAY, 60, logged_in=True)] == \
        [("locked_but_active", "high")]
    assert password_findings(carol, TODAY, 60, logged_in=False) == []
    alice = Account("alice", 1000, "/bin/bash", "$6$x", TODAY - 10)   # not locked: a session is normal
    assert password_findings(alice, TODAY, 60, logged_in=True) == []


def test_once_a_day() -> None:
    assert due(None, 1000.0)
    assert not due(1000.0, 1000.0 + 86399)
    assert due(1000.0, 1000.0 + 86400)
    assert due(1000.0, 500.0)  # the clock went back: report rather than stay silent


@pytest.mark.parametrize("host,severities,result,reasons", [
    ("classified", [], "pass", []),
    ("classified", ["medium", "info"], "pass", []),
    ("classified", ["high"], "fail", ["network: default_route"]),
    ("classified", ["critical", "high"], "fail", ["network: default_route"]),
    ("unclassified", ["critical"], "pass", []),  # the classified-host rules do not bind it
])
def test_report_summary(host: str, severities: list[str], result: str, reasons: list[str]) -> None:
    findings = [{"section": "network", "finding": "default_route", "severity": s} for s in severities]
    s = summarize(host, findings)
    assert (s["result"], s["reasons"], s["applies"]) == (result, reasons, host == "classified")


@pytest.mark.parametrize("host,section,result", [
    ("unclassified", "at_rest", "fail"),    # classified files on an unclassified PC (004 rule 2)
    ("classified", "at_rest", "pass"),      # a classified PC may hold them
    ("unclassified", "chain", "fail"), ("classified", "chain", "fail"),            # bind every host
    ("unclassified", "screenlock", "fail"), ("classified", "media", "fail"),
])
def test_report_summary_by_the_class_a_section_binds(host: str, section: str, result: str) -> None:
    s = summarize(host, [{"section": section, "finding": "x", "severity": "high"}])
    assert s["result"] == result and s["reasons"] == ([f"{section}: x"] if result == "fail" else [])


def test_every_report_section_quotes_its_rule() -> None:
    assert set(REPORT_RULES) == {"network", "wireless", "sharing", "passwords", "usb", "media", "screenlock",
                                 "at_rest", "quarantine", "chain"}
    assert all(src.startswith(("002", "004")) and text.endswith("。") for src, text in REPORT_RULES.values())
    files = sorted((Path(__file__).resolve().parents[3] / "shared/seeds").glob("*.txt"))
    if not files:   # the rule texts above are checked; the quotes need the regulation texts
        pytest.skip("regulation seed texts (../shared/seeds) not present")
    seeds = "".join(p.read_text("utf-8") for p in files)
    for src, text in REPORT_RULES.values():  # quoted, not paraphrased (a clause at a time)
        assert all(part in seeds for part in text.rstrip("。").split(";")), src


def _report(host_class: str, findings: list[dict]) -> dict:
    from baomi.agent.decide.posture import summarize
    for f in findings:
        f.setdefault("details", {})
    return {"report": "baomi.check", "version": 2, "time": "2026-11-20T08:00:00.000000Z",
            "host": {"name": "h", "class": host_class}, "findings": findings,
            "sections": {s: {} for s in REPORT_RULES}, "summary": summarize(host_class, findings)}


def test_report_event_gives_each_section_a_status_and_the_binding_severity() -> None:
    from baomi.agent.decide.posture import report_event
    findings = [{"section": "passwords", "finding": "unreadable", "severity": "medium",
                 "details": {"error": "Permission denied"}},
                {"section": "at_rest", "finding": "never_scanned", "severity": "medium"},
                {"section": "network", "finding": "default_route", "severity": "high",
                 "details": {"interface": "wwan0", "subject": "0.0.0.0/0"}},
                {"section": "usb", "finding": "unrecorded_storage", "severity": "medium",
                 "details": {"vendor_id": "058f", "product": "Mass Storage"}}]
    severity, d = report_event(_report("unclassified", findings))
    checks = {c["id"]: c for c in d["checks"]}
    assert severity == "medium"  # the network finding does not bind an unclassified host
    assert (checks["passwords"]["status"], checks["at_rest"]["status"]) == ("unknown", "unknown")
    assert checks["network"] == {"id": "network", "status": "problem", "applies": False, "findings": 1,
                                 "severity": "high", "summary": "default_route (0.0.0.0/0)"}
    assert checks["sharing"]["status"] == "ok" and checks["usb"]["summary"] == "unrecorded_storage (Mass Storage)"
    assert d["counts"] == {"checks": 10, "ok": 6, "problem": 2, "unknown": 2, "findings": 4, "binding": 2,
                           "by_severity": {"medium": 3, "high": 1}}
    assert report_event(_report("classified", findings))[0] == "high"
    assert report_event(_report("classified", []))[0] == "info"


def test_report_event_is_capped_however_many_findings() -> None:
    from baomi.agent.decide.posture import MAX_EVENT_FINDINGS, report_event
    findings = [{"section": "at_rest", "finding": "classified_file", "severity": "critical",
                 "details": {"path": "/home/x/" + "很长的文件名" * 200 + f"{i}.txt", "level": "top_secret"}}
                for i in range(5000)]
    severity, d = report_event(_report("unclassified", findings))
    assert severity == "critical" and len(d["findings"]) == MAX_EVENT_FINDINGS
    assert d["findings_omitted"] == 5000 - MAX_EVENT_FINDINGS and d["counts"]["findings"] == 5000
    (at_rest,) = [c for c in d["checks"] if c["id"] == "at_rest"]
    assert at_rest["findings"] == 5000 and len(at_rest["summary"]) <= 200 and at_rest["summary"].endswith("…")
    import json
    assert len(json.dumps(d, ensure_ascii=False).encode()) < 64 * 1024
    assert "report" not in d and d["report_omitted"]["bytes"] > d["report_omitted"]["limit"]   # stays on the host


def test_posture_status_names_the_network_state() -> None:
    from baomi.agent.decide.posture import posture_status
    assert posture_status(None, 0) is None
    assert posture_status({}, 0)["network"] == "unknown"  # the network watch did not start
    assert posture_status({"outside_routes": [], "last_probe": 90.0}, 100.0) == {
        "network": "isolated", "reachable": [], "outside": [], "last_probe_age_s": 10.0}
    assert posture_status({"outside_routes": ["0.0.0.0/0"]}, 0)["network"] == "outside_route"
    s = posture_status({"outside_routes": ["0.0.0.0/0"], "reachable": ["www.example.com:443"],
                        "radios": {"blocked": 2, "failed": 0}, "sharing": 1}, 0)
    assert (s["network"], s["reachable"], s["radios"], s["sharing"]) == (
        "external", ["www.example.com:443"], {"blocked": 2, "failed": 0}, 1)
