"""A file closed after writing on a watched medium: gather facts → decide → apply."""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import Any

from baomi.common.events import file_obj, medium_obj
from ..decide.copy import WriteFacts, decide_write
from ..messages import MountedMedium
from ..procinfo import file_owner
from baomi.common.fsutil import sha256_fd
from .effects import Effects
from .paths import current_path, shown_path
from .pipeline import Item
from .verdicts import Verdicts


@dataclass
class Watched:
    medium: MountedMedium
    dev: int
    gone: bool = False


class WrittenFiles:
    def __init__(self, ctx: Any, verdicts: Verdicts, effects: Effects, watched: dict[str, Watched]):
        self.ctx, self.verdicts, self.effects, self.watched = ctx, verdicts, effects, watched

    def handle(self, item: Item) -> None:
        w = self.watched.get(item.medium_key)
        if w is None or item.fd is None:
            return
        fd, medium = item.fd, w.medium
        mp = str(medium.mountpoint)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return
        path = current_path(fd, st, mp)
        shown = shown_path(fd, path)
        writer = item.writer or file_owner(st)
        if writer.uid is None:  # the process exited before it could be looked at
            owner = file_owner(st)
            writer.uid, writer.name = owner.uid, owner.name
        fields: dict[str, Any] = {"user": writer.user_json(), "process": writer.process_json(),
                                  "medium": medium_obj(medium.identity, mp)}
        cfg = self.ctx.config
        facts = dict(host_class=cfg.host.class_, medium_class=medium.medium_class,
                     level_ceiling=medium.level_ceiling, writer_known=writer.uid is not None)
        try:
            sha = sha256_fd(fd)
            size = os.fstat(fd).st_size
            v = self.verdicts.for_content(fd, path, sha, size)
        except OSError as exc:  # the medium went away under us
            outcome = decide_write(WriteFacts(**facts, level=None), cfg.policy.actions)
            fields["file"] = file_obj(shown, mountpoint=mp)
            self.effects.record(outcome, {**fields, "details": {"error": f"{type(exc).__name__}: {exc}"}})
            return
        fields["file"] = file_obj(shown, mountpoint=mp, size=size, sha256=sha, verdict=v)
        wf = WriteFacts(**facts, level=v.level, inspectable=v.inspectable, reason=v.reason,
                        still_mounted=not w.gone and os.path.ismount(mp), exists=path is not None)
        outcome = self.effects.approved(decide_write(wf, cfg.policy.actions), wf, sha, writer.uid, medium)
        self.effects.raise_level(medium, outcome.raise_level_to)
        if outcome.effect == "quarantine" and path is not None:
            with os.fdopen(os.dup(fd), "rb") as src:
                self.effects.quarantine(outcome, src, path, medium, sha, size, v.level, fields)
        else:
            self.effects.record(outcome, fields)
        self.effects.notify(outcome.notify, writer, outcome, v, os.path.basename(shown))
