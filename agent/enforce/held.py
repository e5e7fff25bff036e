"""A file the staging gateway holds on the host until scanned: gather facts → decide →
apply, and answer the gateway commit or refuse. Nothing of a refused file touches the
medium; its content goes to the quarantine from the staged copy."""
from __future__ import annotations

import errno
import logging
import os
import time
from typing import Any

from baomi.common.events import file_obj, medium_obj, user_obj
from baomi.common.fsutil import sha256_fd
from ..decide.copy import WriteFacts, decide_write
from ..gateway.types import Judgement, StagedFile
from ..procinfo import ProcessInfo, describe_pid, user_name
from .effects import Effects
from .verdicts import Verdicts
from .written import Watched

log = logging.getLogger(__name__)

# the gateway's notices that become events, under the catalogue's kind; the others are
# covered by the judge's own events (committed → file.copied, refused → file.blocked) or
# by enforce.mode (held)
GATEWAY_KINDS = {n: n for n in ("gateway.staging_full", "gateway.not_committed", "gateway.lost",
                                "gateway.recovered", "gateway.released")}
GATEWAY_KINDS["gateway.judge_error"] = "gateway.judge_failed"
# how long a file staged before a restart waits for its medium to be published again
RECOVERY_WAIT_S = 60.0


def _writer(pid: int, uid: int) -> ProcessInfo:
    """The process the gateway saw write, with the uid the kernel gave the gateway when
    the process has exited or its pid was reused since."""
    who = describe_pid(pid)
    if who.uid is None or who.uid != uid:
        who.uid, who.name = uid, user_name(uid)
    return who


class HeldFiles:
    def __init__(self, ctx: Any, verdicts: Verdicts, effects: Effects, watched: dict[str, Watched]):
        self.ctx, self.verdicts, self.effects, self.watched = ctx, verdicts, effects, watched

    def judge(self, staged: StagedFile) -> Judgement:
        w = self.watched.get(staged.key)
        if w is None and staged.recovered:
            w = self._wait_for_medium(staged.key)
        if w is None:  # fail closed: a medium this agent does not know is not cleared for anything
            return Judgement(False, errno.EACCES, "medium not known to enforcement")
        medium, mp = w.medium, str(w.medium.mountpoint)
        who = _writer(staged.pid, staged.uid)
        fd = os.open(staged.host_path, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            sha, size = sha256_fd(fd), os.fstat(fd).st_size
            v = self.verdicts.for_content(fd, str(staged.host_path), sha, size)
            cfg = self.ctx.config
            facts = WriteFacts(
                cfg.host.class_, medium.medium_class, medium.level_ceiling, v.level, v.inspectable,
                reason=v.reason, still_mounted=not staged.medium_gone, writer_known=who.uid is not None, held=True)
            outcome = self.effects.approved(decide_write(facts, cfg.policy.actions), facts, sha, who.uid, medium)
            path = os.path.join(mp, staged.relpath)
            details = {"held": True}
            if staged.recovered:
                details["recovered_after_restart"] = True
            if not staged.complete:
                details["complete"] = False
            fields = {"user": who.user_json(), "process": who.process_json(), "medium": medium_obj(medium.identity, mp),
                      "file": file_obj(path, mountpoint=mp, size=size, sha256=sha, verdict=v), "details": details}
            self.effects.raise_level(medium, outcome.raise_level_to)
            if outcome.effect == "quarantine":
                with os.fdopen(os.dup(fd), "rb") as src:
                    self.effects.quarantine_held(outcome, src, medium, sha, size, v.level, fields)
                self.effects.notify(outcome.notify, who, outcome, v, os.path.basename(path))
                return Judgement(False, errno.EACCES, outcome.reason)
            if staged.medium_gone or not staged.complete:
                return Judgement(False, errno.EIO, "the medium is gone")  # the gateway reports what was not committed
            self.effects.record(outcome, fields)
            self.effects.notify(outcome.notify, who, outcome, v, os.path.basename(path))
            return Judgement(True)
        finally:
            os.close(fd)

    def _wait_for_medium(self, key: str) -> Watched | None:
        """A file staged before a restart is judged while its medium is served again, before
        the media component has published it: wait for the medium (bounded)."""
        deadline = time.monotonic() + RECOVERY_WAIT_S
        while time.monotonic() < deadline and not self.ctx.stopping.is_set():
            w = self.watched.get(key)
            if w is not None:
                return w
            self.ctx.stopping.wait(0.05)
        log.warning("medium %s not published within %.0f s: its recovered files are refused", key, RECOVERY_WAIT_S)
        return None

    def notice(self, name: str, fields: dict[str, Any]) -> None:
        """The gateway's own events (staging cap, media gone, recovery) into the spool."""
        if name == "gateway.renamed":
            self._renamed(fields)
            return
        kind = GATEWAY_KINDS.get(name)
        if kind is None:
            return
        w = self.watched.get(fields.get("key", ""))
        medium = medium_obj(w.medium.identity, str(w.medium.mountpoint)) if w else None
        path = fields.get("path") or ""
        file = {"path": path, "name": os.path.basename(path), "size": fields.get("size")} if path else None
        uid = fields.get("uid")
        user = user_obj(uid, user_name(uid)) if uid is not None else None
        self.ctx.record(kind, user=user, medium=medium, file=file,
                        details={k: v for k, v in fields.items() if k not in ("path", "size", "uid")})

    def _renamed(self, fields: dict[str, Any]) -> None:
        """A file committed moments ago renamed: the copy was written under a temporary
        name (rsync, editors), and this names what the user now sees on the medium."""
        w = self.watched.get(fields.get("key", ""))
        if w is None:
            return
        mp = str(w.medium.mountpoint)
        who = _writer(fields["pid"], fields["uid"])
        self.ctx.record("file.renamed", user=who.user_json(), process=who.process_json(),
                        medium=medium_obj(w.medium.identity, mp),
                        file=file_obj(os.path.join(mp, fields["path"]), mountpoint=mp, size=fields.get("size")),
                        details={"held": True, "renamed_from": fields["from"]})
