"""The `block` effect in after-write mode: quarantine, then wipe and remove from
the medium, then record — each step journalled (journal.py) so a crash at any
point is resumed, never repeated or lost.

Removing is not enough on its own: a deleted file's clusters stay on the stick
for undelete tools, so the content is overwritten in place and synced first
(`details.wiped`). Where the gateway holds files until scanned, a blocked file
never reaches the medium and none of this is needed."""
from __future__ import annotations

import logging
import os
import signal
import threading
import uuid
from typing import Any, BinaryIO, Callable

from baomi.common.fsutil import CHUNK, fsync_dir, sha256_stream
from ..decide.copy import blocked_severity
from ..quarantine import Quarantine, QuarantineError, new_entry_id
from .journal import Journal

log = logging.getLogger(__name__)

# Test hook ([debug] crash_at): kill the agent (SIGKILL) right after the named step, to prove recovery.
CRASH_POINTS = ("intent", "storing", "stored", "removed", "recorded")


def wipe(path: str) -> None:
    """Overwrite a file's content in place with zeros and sync it, so the clusters a later
    unlink frees hold nothing of it."""
    fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW)
    try:
        size = os.fstat(fd).st_size
        zeros = bytes(min(CHUNK, max(size, 1)))
        off = 0
        while off < size:
            off += os.pwrite(fd, zeros[: size - off], off)
        os.fsync(fd)
    finally:
        os.close(fd)


class _HookedReader:
    """Reads through to `f`; fires the "storing" hook after the first chunk is consumed."""

    def __init__(self, f: BinaryIO, hook: Callable[[str], None]):
        self.f, self.hook, self.reads = f, hook, 0

    def read(self, n: int = -1) -> bytes:
        self.reads += 1
        if self.reads == 3:
            self.hook("storing")
        return self.f.read(n)


class Blocker:
    def __init__(self, ctx: Any, quarantine: Quarantine, journal: Journal):
        self.ctx = ctx
        self.quarantine = quarantine
        self.journal = journal
        self.crash_at = ctx.config.debug.crash_at
        # told before the agent writes a file itself, so its own wipe is not taken for a copy
        self.before_wipe: Callable[[str], None] = lambda path: None
        self._active: set[str] = set()   # records being worked on now; recovery leaves them alone
        self._lock = threading.Lock()

    def _hook(self, stage: str) -> None:
        if stage == self.crash_at:
            log.warning("test hook: killing the agent after %s", stage)
            os.kill(os.getpid(), signal.SIGKILL)

    # -- the steps ----------------------------------------------------------
    def _store(self, rec: dict[str, Any], src: BinaryIO, journal: bool = True) -> None:
        """Quarantine the content, or note why it was not kept."""
        kept, why, qid = False, None, rec["id"]
        if self.quarantine.public_key is None:
            why = "no quarantine public key configured"
        elif not self.quarantine.has_room(rec["size"]):
            why = "quarantine full"
        else:
            meta = {k: rec[k] for k in ("original_path", "mountpoint", "medium", "size", "sha256",
                                        "level", "rule", "user")}
            try:
                self.quarantine.store(qid, _HookedReader(src, self._hook), meta)
                kept = True
            except (OSError, QuarantineError) as exc:
                why = f"could not write the quarantine entry: {exc}"
        rec.update(state="stored", content_kept=kept, not_kept_reason=why)
        if journal:
            self.journal.put(rec)
            self._hook("stored")

    def _remove(self, rec: dict[str, Any], path: str) -> None:
        try:
            try:
                self.before_wipe(path)
                wipe(path)
                rec["wiped"] = True
            except OSError as exc:
                if isinstance(exc, FileNotFoundError):
                    raise
                rec["wiped"] = False
                rec["wipe_error"] = f"{type(exc).__name__}: {exc}"
            os.unlink(path)
            fsync_dir(os.path.dirname(path))
        except FileNotFoundError:
            pass
        except OSError as exc:
            rec["remove_error"] = f"{type(exc).__name__}: {exc}"
        rec["state"] = "removed"
        self.journal.put(rec)
        self._hook("removed")

    def _already_recorded(self, rec: dict[str, Any]) -> bool:
        return any(e["id"] == rec["event_id"]
                   for e in self.ctx.spool.iter_events(rec.get("seq_mark", 0), "file.blocked"))

    def _record(self, rec: dict[str, Any], held: bool = False) -> dict[str, Any]:
        f = rec["fields"]
        details = dict(f.get("details") or {})
        details["content_kept"] = rec.get("content_kept", False)
        if rec.get("content_kept"):
            details["quarantine_id"] = rec["id"]
        elif rec.get("not_kept_reason"):
            details["not_kept_reason"] = rec["not_kept_reason"]
        details["held"] = held
        if not held:  # after-write: the file was on the medium and had to go
            details["removed"] = not rec.get("remove_error")
            if rec.get("remove_error"):
                details["remove_error"] = rec["remove_error"]
            details["wiped"] = bool(rec.get("wiped"))
            if rec.get("wipe_error"):
                details["wipe_error"] = rec["wipe_error"]
        if rec.get("recovered"):
            details["recovered_after_restart"] = True
        stored = self.ctx.spool.record(
            "file.blocked", event_id=rec["event_id"], severity=blocked_severity(not rec.get("remove_error")),
            user=f.get("user"), medium=f.get("medium"), file=f.get("file"), process=f.get("process"),
            action="block", rule=f.get("rule"), details=details)
        self._hook("recorded")
        return stored

    # -- the whole effect ----------------------------------------------------
    def block(self, *, src: BinaryIO, path: str, mountpoint: str, medium_key: str,
              sha256: str, size: int, level: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Quarantine `src` (the file's content), remove `path`, record file.blocked."""
        seq_mark = self._last_seq()
        rec = {"id": new_entry_id(), "state": "intent", "event_id": str(uuid.uuid4()),
               "seq_mark": seq_mark, "medium_key": medium_key,
               "fs_uuid": (fields.get("medium") or {}).get("fs_uuid"),
               "mountpoint": mountpoint, "relpath": os.path.relpath(path, mountpoint),
               "original_path": path, "medium": fields.get("medium"), "size": size, "sha256": sha256,
               "level": level, "rule": fields.get("rule"), "user": fields.get("user"), "fields": fields}
        with self._lock:
            self._active.add(rec["id"])
        try:
            self.journal.put(rec)
            self._hook("intent")
            src.seek(0)
            self._store(rec, src)
            self._remove(rec, path)
            event = self._record(rec)
            self.journal.done(rec["id"])
        finally:
            with self._lock:
                self._active.discard(rec["id"])
        return event

    def quarantine_held(self, *, src: BinaryIO, medium_key: str, sha256: str, size: int, level: str,
                        fields: dict[str, Any]) -> dict[str, Any]:
        """Held mode: the content never reached the medium, so there is nothing to remove and
        no journal: a crash before the event leaves the staged copy, which is judged again."""
        rec = {"id": new_entry_id(), "size": size, "sha256": sha256, "level": level,
               "rule": fields.get("rule"), "user": fields.get("user"), "medium": fields.get("medium"),
               "mountpoint": (fields.get("medium") or {}).get("mountpoint"),
               "original_path": (fields.get("file") or {}).get("path"), "fields": fields,
               "event_id": str(uuid.uuid4())}
        self._store(rec, src, journal=False)
        return self._record(rec, held=True)

    def _last_seq(self) -> int:
        return self.ctx.spool.last_seq()

    # -- recovery ---------------------------------------------------------
    def recover(self, find_mount: Callable[[dict[str, Any]], str | None]) -> list[dict[str, Any]]:
        """Resume journalled blocks. `find_mount(rec)` gives the medium's current mount
        point or None when it is not mounted (the record then waits for it)."""
        done = []
        with self._lock:
            if not self._active:
                self.quarantine.discard_partial()
            active = set(self._active)
        for rec in self.journal.pending():
            if rec.get("id") in active:
                continue
            try:
                ev = self._resume(rec, find_mount)
            except Exception:
                log.exception("resuming blocked file %s", rec.get("original_path"))
                continue
            if ev is not None:
                done.append(ev)
        return done

    def _resume(self, rec: dict[str, Any], find_mount: Callable[[dict[str, Any]], str | None]) -> dict[str, Any] | None:
        rec["recovered"] = True
        mount = find_mount(rec) if rec["state"] in ("intent", "stored") else None
        path = os.path.join(mount, rec["relpath"]) if mount else None
        if rec["state"] == "intent":
            try:
                self.quarantine.get(rec["id"])  # the entry was completed before the crash
                rec.update(state="stored", content_kept=True, not_kept_reason=None)
                self.journal.put(rec)
            except QuarantineError:
                if mount is None:
                    return None  # wait until the medium is back
                try:
                    with open(path, "rb") as f:
                        same = sha256_stream(f) == rec["sha256"]
                        if not same:
                            # changed since: it will be (or was) scanned as its own write
                            self.journal.done(rec["id"])
                            return None
                        f.seek(0)
                        self._store(rec, f)
                except FileNotFoundError:
                    self.journal.done(rec["id"])  # removed by its owner before anything was done
                    return None
        if rec["state"] == "stored":
            if mount is None:
                return None
            if path and os.path.exists(path):
                with open(path, "rb") as f:
                    same = sha256_stream(f) == rec["sha256"]
                if same:
                    self._remove(rec, path)
                else:
                    rec["state"] = "removed"
            else:
                rec["state"] = "removed"
                self.journal.put(rec)
        event = None
        if not self._already_recorded(rec):
            event = self._record(rec)
        self.journal.done(rec["id"])
        return event
