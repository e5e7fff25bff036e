"""Realistic events for the console's tests and bench: several hosts and users,
Chinese file names, evidence with hashes only. Rows go straight into the
collector's tables with SQLAlchemy bulk inserts."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import uuid
from typing import Any, Iterator

import sqlalchemy as sa

from baomi.common import events as ev
from baomi.service import db

HOSTS = [("财务部-PC01", "unclassified"), ("财务部-PC02", "unclassified"), ("保密室-WS01", "classified"),
         ("研发中心-LT07", "unclassified"), ("办公室-PC11", "unclassified"), ("档案室-WS02", "classified")]
USERS = ["zhangwei", "lina", "wangfang", "liuyang", "chenjing", "zhaolei", "sunli", "zhouqiang"]
FILES = ["2026年第三季度财务报表.xlsx", "关于调整组织机构的通知(机密★1年).docx", "合同-华东区供应商.pdf",
         "会议纪要_保密委员会.doc", "项目计划书v3.pptx", "员工名单.csv", "投标文件(秘密★6个月).docx",
         "设计图纸.zip", "年度预算草案.et", "report-final.pdf"]
# (no "/" in it: a Linux file name cannot hold one)
HOSTILE_FILE = "<script>alert('x')<script>\"报表\".docx"
# kind, severity, action, weight
KINDS = [("file.copied", "info", "audit", 40), ("file.blocked", "high", "block", 12),
         ("medium.inserted", "info", None, 10), ("medium.denied", "high", "deny", 6),
         ("screenlock.enforced", "medium", None, 6), ("screenlock.failed", "high", None, 2),
         ("agent.heartbeat", "info", None, 20), ("file.uninspectable", "medium", "block", 4)]
LEVEL_FOR_KIND = {"file.blocked": ["confidential", "secret", "top_secret"], "file.copied": ["public", "internal"],
                  "file.uninspectable": [None]}
MEDIA = [{"vendor": "Kingston", "product": "DataTraveler 3.0", "serial": "60A44C413A8F", "fs_uuid": "3A1F-22C0",
          "class": "personal"},
         {"vendor": "Netac", "product": "U182", "serial": "AA00000000010917", "fs_uuid": "5E2B-9D11",
          "fs_label": "财务专用", "class": "registered", "level": "secret", "owner": "lina",
          "registry_id": "BM-2026-0042"},
         {"vendor": "SanDisk", "product": "Cruzer Blade", "serial": "4C530001150526111370", "fs_uuid": "0C7E-4411",
          "class": "personal"}]


def agent_id(host: str) -> str:
    return hashlib.sha256(host.encode()).hexdigest()[:32]


def make_rows(n: int, *, now: dt.datetime, days: float = 10.0, seed: int = 7,
              start_seq: int = 1) -> Iterator[dict[str, Any]]:
    """n event rows spread over the last `days`, newest last; deterministic for a seed."""
    rnd = random.Random(seed)
    kinds = [k for k in KINDS for _ in range(k[3])]
    seqs = {h: start_seq for h, _ in HOSTS}
    span = days * 86400
    for i in range(n):
        host, host_class = HOSTS[rnd.randrange(len(HOSTS))]
        kind, severity, action, _w = kinds[rnd.randrange(len(kinds))]
        user = None if kind == "agent.heartbeat" else USERS[rnd.randrange(len(USERS))]
        t = now - dt.timedelta(seconds=span * (n - i) / n + rnd.random())
        medium = file = None
        level = None
        if kind.startswith(("file.", "medium.")):
            medium = dict(MEDIA[rnd.randrange(len(MEDIA))])
        if kind.startswith("file."):
            name = FILES[rnd.randrange(len(FILES))]
            level = rnd.choice(LEVEL_FOR_KIND.get(kind, ["internal"]))
            sha = hashlib.sha256(f"{name}{i % 97}".encode()).hexdigest()
            evidence = []
            if level in ("confidential", "secret", "top_secret"):
                evidence = [{"rule": "marking.national", "zone": "header", "location": "page 1, line 1",
                             "level": level, "hash": hashlib.sha256(f"m{i}".encode()).hexdigest()}]
            file = {"path": f"/media/{user}/U盘/{name}", "size": 10000 + i % 5000, "sha256": sha,
                    "type": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                    "level": level, "evidence": evidence}
        seq = seqs[host]
        seqs[host] += 1
        yield row_for(kind=kind, severity=severity, action=action, host=host, host_class=host_class,
                      user=user, time=t, seq=seq, medium=medium, file=file, level=level,
                      rule=f"{host_class}.personal.{level}" if level else None)


def row_for(*, kind: str, severity: str, host: str, host_class: str, user: str | None, time: dt.datetime,
            seq: int, action: str | None = None, medium: dict | None = None, file: dict | None = None,
            level: str | None = None, rule: str | None = None, details: dict | None = None) -> dict[str, Any]:
    body = {"id": str(uuid.uuid4()), "seq": seq, "time": time.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "agent_id": agent_id(host), "host": {"id": agent_id(host), "name": host, "class": host_class},
            "user": {"uid": 1000 + (USERS.index(user) if user in USERS else 99), "name": user, "session": "3"}
            if user else None,
            "kind": kind, "severity": severity, "medium": medium, "file": file, "session": None,
            "process": None, "action": action, "rule": rule, "details": details or {}, "prev_hash": ""}
    body["hash"] = ev.event_hash(body)
    return {"event_id": body["id"], "agent_id": body["agent_id"], "seq": seq, "time": time,
            "received_at": time + dt.timedelta(seconds=2), "kind": kind, "severity": severity,
            "host_name": host, "user_name": user, "level": level, "action": action,
            "file_name": (file or {}).get("path", "").rsplit("/", 1)[-1] or None,
            "file_sha256": (file or {}).get("sha256"), "status": "new",
            "body": json.dumps(body, ensure_ascii=False)}


def insert_rows(engine: sa.Engine, rows: Iterator[dict[str, Any]], chunk: int = 5000) -> int:
    n = 0
    batch: list[dict[str, Any]] = []
    with engine.begin() as conn:
        for r in rows:
            batch.append(r)
            if len(batch) >= chunk:
                db.insert_events(conn, batch)
                n += len(batch)
                batch.clear()
        if batch:
            db.insert_events(conn, batch)
            n += len(batch)
    return n


def insert_agents(engine: sa.Engine, now: dt.datetime) -> None:
    with engine.begin() as conn:
        for i, (host, host_class) in enumerate(HOSTS):
            offline = host == "研发中心-LT07"
            conn.execute(db.agents.insert().values(
                agent_id=agent_id(host), public_key="00" * 32, host_name=host, host_class=host_class,
                enrolled_at=now - dt.timedelta(days=60), agent_version="0.1.0", policy_version=f"2026.11.{i}",
                last_seen=now - dt.timedelta(hours=5) if offline else now - dt.timedelta(seconds=20),
                spool_depth=340 if offline else i, online=not offline))


def hostile_row(now: dt.datetime) -> dict[str, Any]:
    """A blocked copy whose file name tries to inject markup."""
    file = {"path": f"/media/lina/U盘/{HOSTILE_FILE}", "size": 2048, "sha256": "ab" * 32,
            "type": "application/msword", "level": "secret",
            "evidence": [{"rule": "marking.national", "zone": "header", "location": "page 1, line 1",
                          "level": "secret", "hash": "cd" * 32}]}
    return row_for(kind="file.blocked", severity="high", action="block", host="财务部-PC01",
                   host_class="unclassified", user="lina", time=now - dt.timedelta(minutes=5), seq=900000,
                   medium=MEDIA[0], file=file, level="secret", rule="unclassified.personal.secret")
