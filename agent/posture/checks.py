"""The periodic checks: listening services and shares (host.sharing, once while each lasts)
and passwords (host.password, at most once a day per account and finding)."""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Callable

from baomi.common.events import user_obj

from ..config import PostureSection
from ..decide.posture import Account, PasswordFinding, due, listener_allowed, password_findings
from . import sharing
from .passwords import Reported, logged_in_names, read_accounts

log = logging.getLogger("baomi.agent.posture")


def password_details(acc: Account, f: PasswordFinding) -> dict[str, Any]:
    return {"account": f.account, "finding": f.finding, "age_days": f.age_days, "shell": acc.shell, **f.details}


def _key(finding: dict[str, Any]) -> tuple:
    return tuple(sorted(finding.items()))


class Checks:
    def __init__(self, record: Callable[..., Any], cfg: PostureSection, state_dir: Path,
                 clock: Callable[[], float] = time.time) -> None:
        self.record, self.cfg, self.clock = record, cfg, clock
        self.shared: set[tuple] = set()
        self.reported = Reported(state_dir / "posture-passwords.json")
        self._unreadable: str | None = None

    @property
    def unreadable(self) -> str | None:
        """Why passwd or shadow could not be read in the last round; None when they could."""
        return self._unreadable

    def run_once(self) -> None:
        self.sharing_once()
        self.passwords_once()

    def sharing_findings(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = [
            {"type": "listener", "protocol": l.protocol, "address": l.address, "port": l.port, "process": l.process}
            for l in sharing.listeners() if not listener_allowed(l, self.cfg.allowed_listeners)]
        return found + sharing.nfs_exports(self.cfg.nfs_exports) + sharing.smb_shares(self.cfg.smb_conf)

    def sharing_once(self) -> list[dict[str, Any]]:
        now = self.sharing_findings()
        keys = {_key(f) for f in now}
        new = [f for f in now if _key(f) not in self.shared]
        for f in new:
            self.record("host.sharing", severity="high", action="audit", rule="posture.sharing", details=f)
        self.shared = keys  # gone ones are forgotten, so a share set up again is reported again
        return new

    def password_findings(self, now: float) -> list[tuple[Account, PasswordFinding]]:
        """Raises OSError when passwd or shadow cannot be read."""
        active = logged_in_names()
        return [(acc, f) for acc in read_accounts(self.cfg.passwd_file, self.cfg.shadow_file)
                for f in password_findings(acc, int(now // 86400), self.cfg.max_password_age_days,
                                           acc.name in active)]

    def passwords_once(self) -> int:
        now = self.clock()
        try:
            found = self.password_findings(now)
        except OSError as exc:
            if str(exc) != self._unreadable:  # once per distinct problem
                log.warning("posture: cannot read accounts: %s", exc)
                self.record("agent.config_problem", severity="high",
                            details={"component": "posture", "error": str(exc)})
            self._unreadable = str(exc)
            return 0
        self._unreadable = None
        count = 0
        for acc, f in found:
            key = f"{f.account}:{f.finding}"
            if not due(self.reported.when.get(key), now):
                continue
            self.record("host.password", severity=f.severity, action="audit", rule="posture.password",
                        user=user_obj(f.uid, f.account), details=password_details(acc, f))
            self.reported.when[key] = now
            count += 1
        if count:
            self.reported.save()
        return count
