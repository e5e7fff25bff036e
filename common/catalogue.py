"""The event catalogue: every kind baomi records, declared once.

Each kind has a default severity (a decision table may raise it, e.g. a
`file.copied` of an internal file is `low`), whether it is a security event
(never dropped silently by a full spool; see docs/delivery.md), which objects
of the event schema it carries, who makes it (agent or collector), whether
it needs handling by a person (`actionable`: the console gives such events a
triage state; see `needs_handling`), and its name for people in Chinese and
English (the console shows these).

`make_event` refuses a kind that is not here, and tests check docs/events.md
against this table in both directions.
"""
from __future__ import annotations

from dataclasses import dataclass

SEVERITIES: tuple[str, ...] = ("info", "low", "medium", "high", "critical")
OBJECTS: tuple[str, ...] = ("user", "medium", "file", "session", "process")


@dataclass(frozen=True)
class Kind:
    name: str
    severity: str
    zh: str
    en: str
    security: bool = False
    objects: tuple[str, ...] = ()
    source: str = "agent"        # "agent" or "collector" (or "both")
    telemetry: bool = False      # low-value: the first to go when a spool is full
    # a violation, a refused attempt or protection that failed: someone must look at it (triage);
    # facts of normal operation (started, heartbeat, mounted, applied, finished, allowed) are not
    actionable: bool = False


def _k(name: str, severity: str, zh: str, en: str, objects: str = "", **kw: object) -> Kind:
    return Kind(name, severity, zh, en, objects=tuple(objects.split()), **kw)  # type: ignore[arg-type]


_MEDIUM = "user medium"
_COPY = "user medium file process"

KINDS: dict[str, Kind] = {k.name: k for k in (
    # -- the agent itself
    _k("agent.started", "info", "代理启动", "Agent started"),
    # a security event: stopping the agent ends enforcement, so the trace is never dropped
    _k("agent.stopped", "medium", "代理停止", "Agent stopped", security=True, actionable=True),
    _k("agent.component_failed", "high", "代理组件未启动", "Agent component not started", actionable=True),
    _k("agent.config_problem", "high", "配置有误", "Configuration problem", actionable=True),
    _k("agent.heartbeat", "info", "心跳", "Heartbeat", telemetry=True),
    _k("agent.enrolled", "info", "代理已注册", "Agent enrolled", source="both"),
    _k("agent.delivery_rejected", "high", "事件投递被拒", "Delivery rejected", actionable=True),
    _k("agent.gap", "medium", "事件缺失(已声明)", "Events dropped (announced)", security=True, actionable=True),
    _k("delivery.rejected", "high", "事件被收集端拒收", "Event refused by the collector", security=True, actionable=True),
    _k("agent.spool_over_cap", "high", "事件缓存超限", "Spool over its cap", actionable=True),
    # -- removable media
    _k("medium.inserted", "info", "介质接入", "Medium inserted", _MEDIUM),
    _k("medium.removed", "info", "介质移除", "Medium removed", _MEDIUM),
    _k("medium.mounted", "info", "介质挂载", "Medium mounted", "medium"),
    _k("medium.unmounted", "info", "介质卸载", "Medium unmounted", "medium"),
    _k("medium.allowed", "info", "介质准许使用", "Medium allowed", _MEDIUM),
    _k("medium.read_only", "medium", "介质设为只读", "Medium made read-only", _MEDIUM, security=True, actionable=True),
    _k("medium.denied", "high", "介质被禁用", "Medium denied", _MEDIUM, security=True, actionable=True),
    _k("medium.forged", "high", "介质登记签名无效", "Forged medium registration", _MEDIUM, security=True, actionable=True),
    _k("medium.inventory", "info", "介质内容盘点", "Medium inventory", "medium"),
    _k("media.error", "medium", "介质检测出错", "Media detection error", actionable=True),
    _k("media.uevent_overflow", "medium", "设备事件溢出", "Device events overflowed"),
    _k("device.phone", "medium", "手机接入", "Phone connected", "user", actionable=True),
    _k("device.wireless", "medium", "无线设备接入", "Wireless device connected", "user", actionable=True),
    _k("registry.loaded", "info", "介质登记表已加载", "Media registry loaded", security=True),
    _k("registry.error", "high", "介质登记表有误", "Media registry error", security=True, actionable=True),
    _k("registry.level_lowering_refused", "high", "拒绝降低介质密级", "Medium level lowering refused",
       "medium", security=True, actionable=True),
    # -- central policy documents (docs/policy.md)
    _k("policy.applied", "info", "已应用集中策略", "Central policy applied", security=True),
    _k("policy.forged", "high", "集中策略签名无效", "Forged central policy refused", security=True, actionable=True),
    _k("policy.rollback_refused", "high", "拒绝旧版集中策略", "Older central policy refused", security=True, actionable=True),
    # -- the central media registry (docs/media.md "集中登记")
    _k("media.registry_applied", "info", "已应用集中介质登记表", "Central media registry applied", security=True),
    _k("rules.applied", "info", "已应用集中规则", "Central rules applied", security=True),
    # -- copy approvals, 审批 (docs/media.md): a request waits for the security administrator
    _k("approval.requested", "medium", "申请拷贝审批", "Copy approval requested", "user medium file", security=True,
       actionable=True),
    _k("approval.granted", "medium", "拷贝审批已批准", "Copy approval granted", security=True, source="collector"),
    _k("approval.refused", "low", "拷贝审批未批准", "Copy approval refused", security=True, source="collector"),
    _k("approval.used", "medium", "按审批拷贝", "Copy made under approval", security=True),
    # -- files written to media
    _k("file.copied", "info", "文件拷贝", "File copied", _COPY),
    # a copy written under a temporary name (rsync, editors) and renamed moments later
    _k("file.renamed", "info", "拷贝文件改名", "Copied file renamed", _COPY),
    _k("file.blocked", "high", "文件拷贝被阻止", "File copy blocked", _COPY, security=True, actionable=True),
    _k("file.uninspectable", "medium", "文件无法检查", "File not inspectable", _COPY, security=True, actionable=True),
    _k("file.discovered", "high", "介质上发现涉密文件", "Marked file found on a medium", "medium file",
       security=True, actionable=True),
    # -- files at rest on an unclassified host's own disks (discovery, docs/posture.md)
    _k("file.found_at_rest", "high", "非涉密计算机上发现涉密文件", "Classified file found at rest", "user file",
       security=True, actionable=True),
    _k("file.at_rest_resolved", "info", "涉密文件已清除", "Classified file at rest resolved", "user file"),
    _k("discovery.finished", "info", "涉密文件检查完成", "Discovery pass finished"),
    # `baomi-agent check` (保密自查): info when nothing binding was found, else the worst finding's severity
    _k("check.report", "info", "保密自查报告", "Self-inspection report"),
    _k("scan.unfinished", "medium", "检查未完成", "Check not finished", _COPY, actionable=True),
    _k("enforce.watch_failed", "high", "无法监视介质", "Medium could not be watched", "medium", actionable=True),
    _k("enforce.mode", "info", "拷贝管控方式", "Enforcement mode", "medium"),
    _k("gateway.staging_full", "high", "暂存区已满", "Staging area full", _COPY, security=True, actionable=True),
    _k("gateway.not_committed", "high", "文件未写入介质", "File not committed", _COPY, security=True, actionable=True),
    _k("gateway.lost", "high", "暂存文件丢失", "Staged file lost", "medium file", security=True, actionable=True),
    _k("gateway.recovered", "medium", "暂存文件已恢复", "Staged file recovered", "medium file"),
    _k("gateway.released", "info", "介质已释放", "Medium released", "medium"),
    _k("gateway.judge_failed", "high", "暂存文件检查出错", "Staged file check failed", "medium file",
       security=True, actionable=True),
    _k("quarantine.restored", "high", "隔离文件已恢复", "Quarantined file restored", "user file", actionable=True),
    # -- printing (the document is the event's `file`, the printer is details.printer)
    _k("print.job", "info", "打印作业", "Print job", "user file"),
    _k("print.unprotected_queue", "high", "打印队列未受管控", "Print queue not protected", security=True, actionable=True),
    # -- sessions and screen lock
    _k("session.started", "info", "会话开始", "Session started", "user session"),
    _k("session.ended", "info", "会话结束", "Session ended", "user session"),
    _k("session.terminated", "high", "会话被终止", "Session terminated", "user session", actionable=True),
    _k("screenlock.enforced", "info", "已锁屏", "Screen locked", "user session"),
    _k("screenlock.failed", "high", "锁屏失败", "Screen lock failed", "user session", security=True, actionable=True),
    _k("screenlock.disputed", "high", "锁屏状态不一致", "Screen lock disputed", "user session",
       security=True, actionable=True),
    _k("screenlock.settings_drift", "medium", "锁屏设置被改", "Screen-lock settings changed",
       security=True, actionable=True),
    _k("screenlock.settings_failed", "medium", "锁屏设置未能写入", "Screen-lock settings not written", actionable=True),
    _k("screenlock.absence_warning", "info", "离开提醒", "Absence warning", "user session"),
    _k("screenlock.absence", "medium", "长时间离开", "Long absence", "user session"),
    _k("screenlock.unavailable", "high", "无法读取会话状态", "Session state unavailable", actionable=True),
    _k("screenlock.available", "info", "会话状态恢复", "Session state available"),
    _k("screenlock.helper_socket_failed", "high", "会话助手接口失败", "Helper socket failed", actionable=True),
    _k("helper.missing", "high", "会话助手缺失", "Session helper missing", "user session", security=True, actionable=True),
    _k("helper.rejected", "high", "会话助手被拒", "Session helper rejected", "user session", actionable=True),
    # -- host posture on classified hosts (docs/posture.md)
    _k("host.external_connection", "critical", "违规外联", "External connection", security=True, actionable=True),
    _k("host.external_connection_ended", "medium", "外联已断开", "External connection ended"),
    _k("host.network_changed", "high", "网络变化(可能外联)", "Network change toward outside", security=True, actionable=True),
    _k("host.radio_blocked", "medium", "无线已关闭", "Radio blocked"),
    _k("host.radio_unblocked", "high", "无线被打开", "Radio unblocked", security=True, actionable=True),
    _k("host.sharing", "high", "共享或监听服务", "Sharing or listening service", security=True, actionable=True),
    _k("host.password", "high", "口令不合规", "Password finding", "user", security=True, actionable=True),
    # -- the collector
    _k("chain.break", "high", "事件链断裂", "Event chain broken", source="collector", security=True, actionable=True),
    _k("chain.gap", "high", "事件缺失(未声明)", "Events missing", source="collector", security=True, actionable=True),
    _k("host.offline", "medium", "主机离线", "Host offline", source="collector"),
    _k("host.online", "info", "主机上线", "Host online", source="collector"),
    _k("collector.token_created", "info", "已创建注册令牌", "Enrollment token created", source="collector"),
    _k("collector.token_revoked", "info", "已撤销注册令牌", "Enrollment token revoked", source="collector"),
    _k("ingest.conflict", "high", "事件冲突", "Conflicting event", source="collector", security=True, actionable=True),
    _k("agent.enroll_refused", "high", "注册被拒", "Enrollment refused", source="collector", actionable=True),
    _k("agent.reenroll_approved", "medium", "已批准重新注册", "Re-enrollment approved", source="collector"),
    _k("console.login", "info", "登录", "Login", source="collector"),
    _k("console.login_failed", "low", "登录失败", "Login failed", source="collector"),
    _k("console.lockout", "high", "账户锁定", "Account locked", source="collector"),
    _k("console.address_lockout", "high", "来源地址锁定", "Source address locked out", source="collector"),
    _k("console.logout", "info", "退出登录", "Logout", source="collector"),
    _k("console.forbidden", "medium", "越权访问", "Forbidden", source="collector"),
    _k("console.csrf_rejected", "medium", "跨站请求被拒", "CSRF rejected", source="collector"),
    _k("console.evidence_viewed", "info", "查看证据", "Evidence viewed", source="collector"),
    _k("console.export", "info", "导出事件", "Events exported", source="collector"),
    _k("console.triage", "info", "事件处置", "Event triaged", source="collector"),
    _k("console.token_created", "info", "创建注册令牌", "Token created", source="collector"),
    _k("console.user_added", "info", "添加账户", "Account added", source="collector"),
    _k("console.user_disabled", "info", "停用账户", "Account disabled", source="collector"),
    _k("console.user_enabled", "info", "启用账户", "Account enabled", source="collector"),
    _k("console.password_changed", "info", "修改密码", "Password changed", source="collector"),
    _k("console.signing_key_created", "medium", "创建签名密钥", "Signing key created", source="collector"),
    _k("console.policy_published", "medium", "发布集中策略", "Central policy published", source="collector"),
    _k("console.policy_sign_failed", "medium", "策略签名失败", "Policy signing failed", source="collector"),
    _k("console.check_requested", "info", "要求立即自查", "Self-inspection requested", source="collector"),
    _k("console.group_changed", "medium", "主机组变更", "Host group changed", source="collector"),
    _k("console.medium_registered", "medium", "登记介质", "Medium registered", source="collector"),
    _k("console.medium_revoked", "medium", "注销介质登记", "Medium registration revoked", source="collector"),
    _k("console.medium_register_refused", "medium", "拒绝降低介质密级的登记", "Registration lowering a level refused",
       source="collector"),
    _k("console.rules_published", "medium", "发布集中规则", "Central rules published", source="collector"),
    _k("console.rules_refused", "low", "集中规则未通过校验", "Central rules refused", source="collector"),
)}

TELEMETRY_KINDS: tuple[str, ...] = tuple(k for k, v in KINDS.items() if v.telemetry)
ACTIONABLE_KINDS: tuple[str, ...] = tuple(k for k, v in KINDS.items() if v.actionable)
# whatever its kind, an event that was blocked or denied, or rated high or critical, needs handling
ACTIONABLE_ACTIONS: tuple[str, ...] = ("block", "deny")
ACTIONABLE_SEVERITIES: tuple[str, ...] = ("high", "critical")
# kinds that announce seqs the collector will never receive (details.first_seq..last_seq), so the
# hole they leave is explained, not a chain.gap
ANNOUNCES_DROPS: tuple[str, ...] = ("agent.gap", "delivery.rejected")


class UnknownKind(ValueError):
    pass


def kind(name: str) -> Kind:
    """The catalogue entry for `name`; UnknownKind for anything not declared."""
    try:
        return KINDS[name]
    except KeyError:
        raise UnknownKind(f"event kind {name!r} is not in the catalogue (baomi.common.catalogue)") from None


def names(*kinds: str) -> tuple[str, ...]:
    """Kind names for queries and filters, checked against the catalogue when the module
    using them is imported (a misspelt kind fails at once, not as an always-empty query)."""
    for k in kinds:
        kind(k)
    return kinds


def is_security(name: str, severity: str = "info") -> bool:
    """Security events are never dropped silently: declared so, or high/critical whatever their kind."""
    k = KINDS.get(name)
    return severity in ("high", "critical") or (k is not None and k.security)


def needs_handling(name: str, severity: str | None = None, action: str | None = None) -> bool:
    """Does this event get a triage state (pending, investigating, closed)? When its kind is
    actionable, or it was blocked or denied, or its severity is high or critical (a decision
    table may raise an ordinary kind). Heartbeats, starts, mounts and the like never do."""
    k = KINDS.get(name)
    return (k is not None and k.actionable) or action in ACTIONABLE_ACTIONS or severity in ACTIONABLE_SEVERITIES


def label(name: str, lang: str) -> str:
    """The kind's name for people ("zh" or "en"); the raw kind when unknown (older agents)."""
    k = KINDS.get(name)
    if k is None:
        return name
    return k.zh if lang.startswith("zh") else k.en


# -- docs/events.md's reference table ---------------------------------------------
DOC_BEGIN = "<!-- BEGIN catalogue, generated by `python -m baomi.common.catalogue`; do not edit -->"
DOC_END = "<!-- END catalogue -->"


def render_markdown() -> str:
    rows = [DOC_BEGIN, "", "## The catalogue", "",
            "| kind | 中文 | English | default severity | security event | needs handling | objects | made by |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for k in KINDS.values():
        rows.append(f"| `{k.name}` | {k.zh} | {k.en} | {k.severity} | {'yes' if k.security else ''} | "
                    f"{'yes' if k.actionable else ''} | {', '.join(k.objects)} | {k.source} |")
    return "\n".join(rows + ["", DOC_END])


if __name__ == "__main__":
    print(render_markdown())
