"""Events for the host page and the at-rest tile: self-inspection reports (one delivered late),
discovery passes with their by-level counts, heartbeats with posture, enforcement modes and
the scan workers' confinement, and the enforce.mode events that name the media."""
from __future__ import annotations

import datetime as dt

from tests.console import seed

CHECKS = ("network", "wireless", "sharing", "passwords", "usb", "media", "screenlock", "at_rest", "quarantine",
          "chain")


WHOLE_REPORT = {"report": "baomi.check", "version": 2, "host": {"name": "财务部-PC01", "class": "unclassified"},
                "summary": {"result": "fail", "reasons": ["at_rest: classified_file"]},
                "findings": [{"section": "at_rest", "finding": "classified_file", "severity": "high",
                              "facts": {"path": "/home/li/方案.docx", "level": "secret"},
                              "rule": "002 非涉密计算机不得存储、处理涉密信息"}]}


def report_row(host: str, seq: int, time: dt.datetime, problems: dict[str, str], *,
               received: dt.datetime | None = None, host_class: str = "unclassified",
               attached: dict | None = None) -> dict:
    """A check.report as `baomi-agent check` records it; problems: check id -> summary."""
    checks = [{"id": c, "status": "problem" if c in problems else "unknown" if c == "passwords" else "ok",
               "applies": True, "findings": 1 if c in problems else 0, "severity": "high" if c in problems else None,
               "summary": problems.get(c, "no findings")} for c in CHECKS]
    details = {"format": {"report": "baomi.check", "version": 2, "event_version": 2},
               "report_time": time.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
               "result": "fail" if problems else "pass", "applies": host_class == "classified",
               "reasons": [f"{c}: x" for c in problems],
               "counts": {"checks": 10, "ok": 9 - len(problems), "problem": len(problems), "unknown": 1,
                          "findings": len(problems), "binding": len(problems), "by_severity": {"high": len(problems)}},
               "checks": checks, "findings": [], "findings_omitted": 0}
    if attached is not None:   # the whole report, as the agent attaches one small enough
        details["report"] = attached
    row = seed.row_for(kind="check.report", severity="high" if problems else "info", host=host,
                       host_class=host_class, user=None, time=time, seq=seq, action="audit", rule="保密自查",
                       details=details)
    if received is not None:
        row["received_at"] = received
    return row


def discovery_row(host: str, seq: int, time: dt.datetime, at_rest: dict[str, int] | None) -> dict:
    details = {"pass": seq, "files": 1200, "bytes": 10**8, "scanned": 30, "hashed": 2, "found": 1, "resolved": 0,
               "paths": ["/home"], "time": time.strftime("%Y-%m-%dT%H:%M:%SZ")}
    if at_rest is not None:
        details["at_rest"] = {"internal": 0, "confidential": 0, "secret": 0, "top_secret": 0, **at_rest}
    return seed.row_for(kind="discovery.finished", severity="info", host=host, host_class="unclassified",
                        user=None, time=time, seq=seq, details=details)


def heartbeat_row(host: str, seq: int, time: dt.datetime, posture: dict | None, host_class: str = "classified",
                  **details: object) -> dict:
    return seed.row_for(kind="agent.heartbeat", severity="info", host=host, host_class=host_class, user=None,
                        time=time, seq=seq, details={"version": "0.1.0", "spool_depth": 0, "posture": posture,
                                                     **details})


# 财务部-PC01's two sticks, by the keys its heartbeat's enforcement map gives them
HELD_KEY, WEAK_KEY = "sdb1-3f1c9a0e2b7d4c11", "sdc1-9e8d7c6b5a4f3e21"
NO_FUSE = "gateway not available: /dev/fuse is missing"
NO_LANDLOCK = "no Landlock in this kernel (Operation not supported): it may write files"


def mode_row(host: str, seq: int, time: dt.datetime, key: str, mode: str, label: str, why: str = "") -> dict:
    """An enforce.mode event as the agent records it when it takes a medium over."""
    medium = {"class": "personal", "devnode": f"/dev/{key[:4]}", "fs_label": label, "fs_type": "exfat",
              "mountpoint": f"/media/li/{label}", "key": key}
    return seed.row_for(kind="enforce.mode", severity="info" if mode == "held" else "medium", host=host,
                        host_class="unclassified", user=None, time=time, seq=seq, medium=medium,
                        details={"mode": mode, **({"why": why} if why else {})})


def rows(now: dt.datetime) -> list[dict]:
    """财务部-PC01: a newer report with one problem, and an older failing one
    delivered after it; two discovery passes (the newer counts); one stick held, one enforced after
    the write, its scan workers partly confined. 办公室-PC11 holds 5 confidential
    files; 研发中心-LT07 holds none; 财务部-PC02 runs an agent without by-level counts.
    保密室-WS01 (classified) is connected outside, its agent too old to report enforcement."""
    day = dt.timedelta(days=1)
    return [
        report_row("财务部-PC01", 800_005, now - dt.timedelta(hours=1), {"at_rest": "classified_file (/home/li/方案.docx)"},
                   attached=WHOLE_REPORT),
        # older (lower seq, earlier time) but received last: never shown as the latest
        report_row("财务部-PC01", 800_001, now - 3 * day,
                   {"usb": "unrecorded_storage (旧报告U盘)", "chain": "events_dropped ×1", "at_rest": "x"},
                   received=now - dt.timedelta(minutes=1)),
        discovery_row("财务部-PC01", 800_002, now - 2 * day, {"secret": 9}),
        discovery_row("财务部-PC01", 800_006, now - dt.timedelta(hours=2),
                      {"top_secret": 1, "secret": 2, "confidential": 3, "internal": 4}),
        discovery_row("办公室-PC11", 800_001, now - dt.timedelta(hours=3), {"confidential": 5}),
        discovery_row("研发中心-LT07", 800_001, now - dt.timedelta(hours=3), {"internal": 7}),
        discovery_row("财务部-PC02", 800_001, now - dt.timedelta(hours=3), None),
        # the weaker stick was named otherwise before: the latest event names it
        mode_row("财务部-PC01", 800_007, now - dt.timedelta(hours=3), WEAK_KEY, "after_write", "旧标签", "old"),
        mode_row("财务部-PC01", 800_008, now - dt.timedelta(minutes=50), WEAK_KEY, "after_write", "李四的U盘", NO_FUSE),
        mode_row("财务部-PC01", 800_009, now - dt.timedelta(minutes=40), HELD_KEY, "held", "财务U盘"),
        heartbeat_row("财务部-PC01", 800_010, now - dt.timedelta(minutes=1), None, "unclassified",
                      enforcement={HELD_KEY: "held", WEAK_KEY: "after_write"},
                      scan_workers={"state": "partial", "user": "baomi-scan", "uid": 998, "refused": [NO_LANDLOCK]}),
        # an older agent: no enforcement map, no scan workers in its heartbeat
        heartbeat_row("保密室-WS01", 800_001, now - dt.timedelta(minutes=2),
                      {"network": "external", "reachable": ["198.51.100.10:8443"], "outside": ["0.0.0.0/0"],
                       "radios": {"blocked": 1, "failed": 0}, "sharing": 2, "passwords_readable": True}),
    ]
