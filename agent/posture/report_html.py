"""The 保密自查 report as one HTML page: readable offline, printable, Chinese and English."""
from __future__ import annotations

import json
from html import escape
from typing import Any

SECTIONS = {"network": ("网络与外联", "Network and outside connections"),
            "wireless": ("无线设备", "Wireless devices"),
            "sharing": ("共享与监听服务", "Shares and listening services"),
            "passwords": ("口令", "Passwords"),
            "usb": ("USB存储设备使用记录", "USB storage history"),
            "media": ("移动存储介质", "Removable media seen"),
            "screenlock": ("屏幕保护与锁屏", "Screen lock"),
            "at_rest": ("本机涉密文件", "Classified files at rest"),
            "quarantine": ("隔离与阻止拷贝", "Quarantine and blocked copies"),
            "chain": ("审计记录完整性", "The agent's event chain")}
# lists among a section's facts shown as tables: (facts key, [(column, 中文 English)])
TABLES = {"usb": ("devices", [("vendor_id", "厂商 Vendor"), ("product_id", "产品 Product ID"),
                              ("manufacturer", "制造商 Manufacturer"), ("product", "名称 Product"),
                              ("serial", "序列号 Serial"), ("first_seen", "首次 First seen"),
                              ("last_seen", "最近 Last seen"), ("times_seen", "次数 Times"),
                              ("sources", "来源 Sources")]),
          "media": ("media", [("class", "类别 Class"), ("registry_id", "登记号 Registry id"),
                              ("product", "名称 Product"), ("serial", "序列号 Serial"),
                              ("first_seen", "首次 First seen"), ("last_seen", "最近 Last seen"),
                              ("times", "次数 Times")])}
SEVERITY = {"critical": "严重 critical", "high": "高 high", "medium": "中 medium", "low": "低 low", "info": "提示 info"}
CSS = """body{font-family:"WenQuanYi Micro Hei","Noto Sans CJK SC",sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;width:100%;margin:.5em 0 1.5em}td,th{border:1px solid #999;padding:.3em .5em;
text-align:left;vertical-align:top;font-size:.9em}th{background:#eee}.pass{color:#060}.fail{color:#b00}
.critical,.high{background:#fdd}.rule{color:#555;font-size:.9em}code{white-space:pre-wrap}
@media print{body{margin:0}}"""


def _details(d: Any) -> str:
    return f"<code>{escape(json.dumps(d, ensure_ascii=False, sort_keys=True))}</code>"


def _cell(v: Any) -> str:
    return escape(", ".join(map(str, v)) if isinstance(v, list) else "" if v is None else str(v))


def _table(section: str, facts: dict[str, Any]) -> list[str]:
    key, columns = TABLES.get(section, ("", []))
    rows = facts.get(key) or []
    if not rows:
        return []
    return (["<table><tr>" + "".join(f"<th>{label}</th>" for _, label in columns) + "</tr>"]
            + ["<tr>" + "".join(f"<td>{_cell(r.get(c))}</td>" for c, _ in columns) + "</tr>" for r in rows]
            + ["</table>"])


def render(report: dict[str, Any]) -> str:
    s, host = report["summary"], report["host"]
    verdict = {"pass": "合格 PASS", "fail": "不合格 FAIL"}[s["result"]]
    out = ["<!DOCTYPE html><html lang='zh-CN'><head><meta charset='utf-8'>",
           f"<title>保密自查报告 Self-inspection — {escape(host['name'])}</title><style>{CSS}</style></head><body>",
           "<h1>保密自查报告 <small>Self-inspection report</small></h1>",
           f"<p>主机 Host: <b>{escape(host['name'])}</b> · 类别 Class: <b>{escape(host['class'])}</b> · "
           f"代理版本 Agent: {escape(report['agent_version'])} · 策略版本 Policy: "
           f"{escape(str(report.get('policy_version', '')))} · 时间 Time: {escape(report['time'])}</p>",
           f"<h2 class='{s['result']}'>结论 Result: {verdict}</h2>"]
    if not s["applies"]:
        out.append("<p>非涉密计算机:涉密计算机的要求(网络、无线、共享、口令)仅供参考。 Unclassified host: "
                   "the classified-host rules (network, wireless, sharing, passwords) are for information.</p>")
    if s["reasons"]:
        out.append("<ul>" + "".join(f"<li>{escape(r)}</li>" for r in s["reasons"]) + "</ul>")
    for key, (zh, en) in SECTIONS.items():
        rule = report["rules"][key]
        found = [f for f in report["findings"] if f["section"] == key]
        out.append(f"<h2>{zh} <small>{en}</small></h2><p class='rule'>依据 Rule ({escape(rule['source'])}): "
                   f"{escape(rule['text'])}</p>")
        if not found:
            out.append("<p class='pass'>未发现问题 No findings.</p>")
        else:
            out.append("<table><tr><th>级别 Severity</th><th>发现 Finding</th><th>详情 Details</th></tr>")
            out += [f"<tr class='{f['severity']}'><td>{SEVERITY.get(f['severity'], f['severity'])}</td>"
                    f"<td>{escape(f['finding'])}</td><td>{_details(f['details'])}</td></tr>" for f in found]
            out.append("</table>")
        out += _table(key, report["sections"][key])
        out.append(f"<details><summary>采集的事实 Facts</summary>{_details(report['sections'][key])}</details>")
    out.append("<h2>历史记录 <small>What the agent recorded</small></h2>")
    if report["history"]:
        out.append("<table><tr><th>时间 Time</th><th>事件 Event</th><th>详情 Details</th></tr>")
        out += [f"<tr class='{h['severity']}'><td>{escape(h['time'])}</td><td>{escape(h['kind'])}</td>"
                f"<td>{_details(h['details'])}</td></tr>" for h in report["history"]]
        out.append("</table>")
    else:
        out.append("<p>无 None.</p>")
    out.append("</body></html>")
    return "\n".join(out)
