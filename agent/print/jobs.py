"""The agent's side of a print job: gather the facts (the documents' verdicts, the
printer's registration), decide (decide/print.py), stamp, record `print.job`
durably, then answer the backend and tell the user."""
from __future__ import annotations

import logging
import os
import pwd
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from baomi.common.events import file_obj, user_obj, utcnow
from baomi.common.fsutil import sha256_fd
from baomi.common.levels import Level
from ..config import AgentConfig
from ..decide.print import WATERMARK_REQUIRED_RULE, PrintFacts, PrintOutcome, decide_print
from ..enforce.verdicts import Verdicts
from ..scan.verdict import Evidence, Verdict
from .convert import PDF, POSTSCRIPT, sniff, to_pdf
from .cups import Cups, CupsError
from .printers import PrinterRegistry, printer_obj
from .protocol import JobReply, JobRequest
from .watermark import NotPdf, Stamp, page_count, stamp_file

log = logging.getLogger(__name__)


@dataclass
class Scanned:
    """The job's documents taken together: the highest level, all evidence, and whether
    every one of them could be read."""
    verdict: Verdict
    documents: int
    pages: int | None = None
    reasons: list[str] = field(default_factory=list)


def uid_of(user: str) -> int | None:
    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError:
        return None


def job_user(uid: int | None, name: str) -> dict[str, Any]:
    """The event's user: the CUPS job user, with the uid of the local account of that name
    (None for a name from another machine)."""
    return user_obj(uid, name) or {"uid": None, "name": name, "session": None}


def block_message(level: Level, inspectable: bool, reason: str) -> str:
    """The line CUPS shows the user (job-printer-state-message) for a cancelled job."""
    if level > Level.PUBLIC:   # a marking found decides, even where part of the document was unreadable
        return f"baomi: {level.zh} document blocked on this printer"
    if not inspectable:
        return f"baomi: document could not be inspected ({reason}); blocked on this printer"
    return f"baomi: printing blocked on this printer ({reason})"


def stamp_for(user: str, host: str, printer: str, job_id: int) -> Stamp:
    return Stamp(user=user, host=host, time=utcnow()[:19] + "Z", job=f"{printer}-{job_id}")


def may_convert(req: JobRequest) -> bool:
    """Text and PostScript become PDF only where the data is the document itself (a queue
    without a driver); a driver's output is in the printer's own language."""
    return not req.final_content_type or req.data in req.documents


@dataclass
class Applied:
    outcome: PrintOutcome
    data: str                      # what goes to the printer: the stamped copy, or the job's data
    watermark: dict[str, Any]
    pages: int | None = None       # of the stamped data, when stamped


def decide_and_stamp(cfg: AgentConfig, facts: PrintFacts, req: JobRequest, work_dir: Path) -> Applied:
    """The table's outcome, with the stamp applied when it says so; data that cannot take
    the stamp is decided again as such (printed unstamped, or blocked if it is required)."""
    def decide(f: PrintFacts) -> PrintOutcome:
        return decide_print(f, cfg.print.watermark_levels, cfg.policy.actions, cfg.print.watermark_required)

    outcome = decide(facts)
    if not outcome.watermark:
        return Applied(outcome, req.data, {"applied": False})
    stamp = stamp_for(req.user, cfg.host.name, req.printer, req.job_id)
    try:
        done = stamp_file(req.data, stamp, str(work_dir / f"out-{req.job_id}-{uuid.uuid4().hex}"), may_convert(req))
    except NotPdf as exc:
        return Applied(decide(replace(facts, stampable=False)), req.data, {"applied": False, "why": str(exc)})
    return Applied(outcome, done.path, {"applied": True, "text": stamp.text(), "converted_from": done.converted or None},
                   done.pages)


def reply_for(applied: Applied, level: Level, message: str) -> JobReply:
    o = applied.outcome
    reply = JobReply(o.action, o.forward, applied.data, level=level.id,
                     details={"rule": o.rule, "watermark": applied.watermark["applied"]})
    if not o.forward:
        reply.message = message if o.rule != WATERMARK_REQUIRED_RULE else \
            "baomi: the watermark cannot be applied to this job; blocked"
    return reply


class PrintJobs:
    def __init__(self, ctx: Any, verdicts: Verdicts, registry: PrinterRegistry, work_dir: Path,
                 cups: Cups | None = None):
        self.ctx, self.verdicts, self.registry, self.work_dir, self.cups = ctx, verdicts, registry, work_dir, cups

    def make_model(self, req: JobRequest) -> str:
        """The printer's make and model: its PPD's (the backend read it), else what CUPS reports
        for the queue (driverless and raw queues have no PPD)."""
        if req.make_model or self.cups is None or not req.printer:
            return req.make_model
        try:
            return self.cups.attributes(req.printer).get("printer-make-and-model", "")
        except CupsError:
            return ""

    # -- facts ----------------------------------------------------------------------
    def _scan_one(self, path: str) -> tuple[Verdict, int | None]:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            sha, size = sha256_fd(fd), os.fstat(fd).st_size
            os.lseek(fd, 0, os.SEEK_SET)
            mime = sniff(os.read(fd, 4096))
            if mime != POSTSCRIPT:
                v = self.verdicts.for_content(fd, path, sha, size)
                return v, page_count(_read(path)) if mime == PDF else None
        finally:
            os.close(fd)
        # PostScript carries its text in drawing operators: read it through the PDF CUPS makes of it
        cached = self.verdicts.cached(sha)
        try:
            pdf = to_pdf(path, POSTSCRIPT)
        except RuntimeError as exc:
            log.info("%s: %s; scanned as it is", path, exc)
            return cached or self.verdicts.scanner.scan_file(path, sha), None
        if cached is None:
            tmp = self.work_dir / f"scan-{uuid.uuid4().hex}.pdf"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, pdf)
            finally:
                os.close(fd)
            try:
                cached = self.verdicts.scanner.scan_file(str(tmp), sha)
            finally:
                tmp.unlink(missing_ok=True)
            cached.path, cached.size = path, size
            self.verdicts.cache.put(sha, cached)
        return cached, page_count(pdf)

    def scan(self, req: JobRequest) -> Scanned:
        paths = req.documents or [req.data]
        verdicts, pages = [], None
        for path in paths:
            try:
                v, n = self._scan_one(path)
            except OSError as exc:
                v, n = Verdict(path=path, inspectable=False, reason="unreadable", detail=str(exc)), None
            verdicts.append(v)
            if n is not None:
                pages = (pages or 0) + n
        first = verdicts[0]
        evidence: list[Evidence] = []
        for i, v in enumerate(verdicts):
            for e in v.evidence:
                evidence.append(Evidence(e.rule, e.zone, e.level, {**e.location, "document": i + 1}, e.hash)
                                if len(verdicts) > 1 else e)
        bad = [v for v in verdicts if not v.inspectable]
        combined = Verdict(path=req.title, level=max(v.level for v in verdicts), inspectable=not bad,
                           reason=bad[0].reason if bad else None, detail=bad[0].detail if bad else None,
                           evidence=evidence, type=first.type, size=sum(v.size for v in verdicts),
                           sha256=first.sha256 if len(verdicts) == 1 else None)
        return Scanned(combined, len(verdicts), pages, [f"{v.reason}: {v.detail}" for v in bad])

    # -- the decision, applied --------------------------------------------------------
    def judge(self, req: JobRequest) -> JobReply:
        cfg = self.ctx.config
        scanned = self.scan(req)
        v = scanned.verdict
        record = self.registry.lookup(req.printer, req.device_uri, cfg.host.class_)
        uid = uid_of(req.user)
        facts = PrintFacts(cfg.host.class_, "registered" if record else "unregistered",
                           record.level if record else None, v.level, v.inspectable, user_known=uid is not None)
        applied = decide_and_stamp(cfg, facts, req, self.work_dir)
        outcome = applied.outcome
        if applied.pages is not None:
            scanned.pages = applied.pages
        reply = reply_for(applied, v.level, block_message(v.level, v.inspectable, v.reason or outcome.reason))
        details = {"printer": printer_obj(req.printer, req.device_uri, self.make_model(req), record),
                   "job_id": req.job_id, "title": req.title, "pages": scanned.pages, "copies": req.copies,
                   "job_user": req.user, "documents": scanned.documents, "content_type": req.content_type,
                   "final_content_type": req.final_content_type or None, "watermark": applied.watermark,
                   "reason": outcome.reason}
        if scanned.reasons:
            details["not_inspected"] = scanned.reasons
        self.ctx.record(outcome.kind, severity=outcome.severity, action=outcome.action, rule=outcome.rule,
                        user=job_user(uid, req.user),
                        file=file_obj(req.title or "(untitled)", size=v.size, sha256=v.sha256, verdict=v),
                        details=details)
        self._notify(uid, outcome, req, v)
        return reply

    def _notify(self, uid: int | None, outcome: PrintOutcome, req: JobRequest, v: Verdict) -> None:
        if outcome.notify is None or uid is None:
            return
        from .. import notify
        summary, body = notify.render(outcome.notify, notify.user_lang(uid), name=req.title, printer=req.printer,
                                      level_zh=v.level.zh, level_en=v.level.en, reason=outcome.reason,
                                      why=v.reason or "")
        notify.deliver_async(uid, summary, body, "critical" if outcome.action == "block" else "normal",
                             self.ctx.notifiers)


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()
