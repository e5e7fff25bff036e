"""The three roles (三员分立) and what each may do; enforced on the server for every
page and action (see docs/console.md). One account holds exactly one role.

sysadmin  系统管理员  hosts, enrollment tokens, collector settings
secadmin  安全保密管理员  dashboard, events and evidence, triage, media seen and registered, policy, site rules, approvals
auditor   安全审计员  reads everything, changes nothing; the only one who sees
                      the console's own audit trail (nobody audits themselves)
"""
from __future__ import annotations

ROLES: tuple[str, ...] = ("sysadmin", "secadmin", "auditor")

# permission -> roles holding it
PERMISSIONS: dict[str, frozenset[str]] = {
    "dashboard.view": frozenset({"secadmin", "auditor"}),
    "events.view": frozenset({"secadmin", "auditor"}),
    "events.export": frozenset({"secadmin", "auditor"}),
    "events.triage": frozenset({"secadmin"}),
    "media.view": frozenset({"secadmin", "auditor"}),
    "media.register": frozenset({"secadmin"}),   # register / revoke media (集中登记), signed
    "policy.view": frozenset({"secadmin", "auditor"}),
    "policy.publish": frozenset({"secadmin"}),   # sign and publish central policy documents
    "rules.view": frozenset({"secadmin", "auditor"}),
    "rules.publish": frozenset({"secadmin"}),    # sign and publish site rules and fingerprints
    "approvals.view": frozenset({"secadmin", "auditor"}),
    "approvals.decide": frozenset({"secadmin"}),  # grant or refuse a copy (审批), signed
    "hosts.view": frozenset({"sysadmin", "auditor"}),
    # name host groups (e.g. 财务部) and put hosts in them; signed into the next policy version
    "hosts.group": frozenset({"sysadmin"}),
    # one host's page: its health for all three; its self-inspection report, files held at rest,
    # posture and event counts only with events.view (the system administrator sees no security events)
    "host.view": frozenset({"sysadmin", "secadmin", "auditor"}),
    # ask a host for its self-inspection report now (立即自查): a read of the host's state, not a
    # change to it; the security administrator's inspection duty, and the auditor sees it in the trail
    "host.check_request": frozenset({"secadmin"}),
    "tokens.view": frozenset({"sysadmin", "auditor"}),
    "tokens.create": frozenset({"sysadmin"}),
    "settings.view": frozenset({"sysadmin", "auditor"}),
    "audit.view": frozenset({"auditor"}),
}

# The navigation bar: (permission, path, label key)
NAV: tuple[tuple[str, str, str], ...] = (
    ("dashboard.view", "/dashboard", "nav.dashboard"),
    ("events.view", "/events", "nav.events"),
    ("media.view", "/media", "nav.media"),
    ("policy.view", "/policy", "nav.policy"),
    ("rules.view", "/rules", "nav.rules"),
    ("approvals.view", "/approvals", "nav.approvals"),
    ("hosts.view", "/hosts", "nav.hosts"),
    ("tokens.view", "/tokens", "nav.tokens"),
    ("settings.view", "/settings", "nav.settings"),
    ("audit.view", "/audit", "nav.audit"),
)


def allowed(role: str, permission: str) -> bool:
    return role in PERMISSIONS[permission]


def home(role: str) -> str:
    """The first page a role lands on after login."""
    return "/hosts" if role == "sysadmin" else "/dashboard"
