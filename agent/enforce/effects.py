"""What enforcement does once a decision is taken: record, quarantine, notify, raise a
medium's level. Small adapters; the decisions themselves are in agent/decide/."""
from __future__ import annotations

import logging
from typing import Any, BinaryIO

from baomi.common.levels import Level
from dataclasses import replace

from ..decide.copy import Outcome, WriteFacts, decide_write
from ..messages import MountedMedium
from ..procinfo import ProcessInfo
from ..scan.verdict import Verdict
from .block import Blocker

log = logging.getLogger(__name__)


class Effects:
    def __init__(self, ctx: Any, blocker: Blocker):
        self.ctx = ctx
        self.blocker = blocker

    def approved(self, outcome: Outcome, facts: WriteFacts, sha256: str, uid: int | None,
                 medium: MountedMedium) -> Outcome:
        """A block that a valid 审批 covers (this content, medium and user) is decided again as
        approved; the approval counts the copy (agent/approvals.py)."""
        if outcome.effect != "quarantine":
            return outcome
        from ..approvals import approvals_of
        aid = approvals_of(self.ctx).claim(sha256, uid, medium.identity)
        if aid is None:
            return outcome
        return decide_write(replace(facts, approval_id=aid), self.ctx.config.policy.actions)

    def record(self, outcome: Outcome, fields: dict[str, Any]) -> dict[str, Any]:
        details = dict(fields.get("details") or {}, reason=outcome.reason, **outcome.details)
        return self.ctx.record(outcome.kind, severity=outcome.severity, action=outcome.action,
                               rule=outcome.rule, **{**fields, "details": details})

    def quarantine(self, outcome: Outcome, src: BinaryIO, path: str, medium: MountedMedium, sha256: str,
                   size: int, level: Level, fields: dict[str, Any]) -> dict[str, Any]:
        fields = dict(fields, rule=outcome.rule,
                      details=dict(fields.get("details") or {}, reason=outcome.reason))
        return self.blocker.block(src=src, path=path, mountpoint=str(medium.mountpoint), medium_key=medium.key,
                                  sha256=sha256, size=size, level=level.id, fields=fields)

    def quarantine_held(self, outcome: Outcome, src: BinaryIO, medium: MountedMedium, sha256: str, size: int,
                        level: Level, fields: dict[str, Any]) -> dict[str, Any]:
        fields = dict(fields, rule=outcome.rule,
                      details=dict(fields.get("details") or {}, reason=outcome.reason))
        return self.blocker.quarantine_held(src=src, medium_key=medium.key, sha256=sha256, size=size,
                                            level=level.id, fields=fields)

    def raise_level(self, medium: MountedMedium, level: Level | None) -> None:
        """一次涉密,终身涉密: a registered medium's level only rises."""
        if level is None:
            return
        from ..media.history import LevelHistory
        try:
            LevelHistory(self.ctx.config.state_dir).raise_to(medium.registry_id or medium.key, level)
        except Exception as exc:
            log.warning("could not raise the level of medium %s: %s", medium.registry_id or medium.key, exc)

    def notify(self, key: str | None, who: ProcessInfo, outcome: Outcome, verdict: Verdict, name: str) -> None:
        if key is None or who.uid is None:
            return
        from .. import notify
        lang = notify.user_lang(who.uid, who.lang)
        summary, body = notify.render(key, lang, name=name, level_zh=verdict.level.zh,
                                      level_en=verdict.level.en, reason=outcome.reason,
                                      why=verdict.reason or "")
        notify.deliver_async(who.uid, summary, body,
                             "critical" if outcome.action == "block" else "normal", self.ctx.notifiers)
