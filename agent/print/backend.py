"""The `baomi` CUPS backend. cupsd runs it as root (mode 0700) for every job of a queue
whose device URI is `baomi:<original URI>`.

1. The job's data is held first: the file cupsd names, or stdin copied to a root-only
   file — no byte goes on before the verdict.
2. The running agent is asked over its root-only socket. It scans the documents as
   submitted (cupsd's spool files d<job>-NNN), decides, stamps, records, and answers.
3. Blocked: the job is cancelled (CUPS_BACKEND_CANCEL) with the reason on stderr, which
   CUPS shows the user. Allowed: the (stamped) data goes to the original device —
   written to the file of a file: URI, or handed to the real backend of its scheme.

No verdict (the agent is stopped, or did not answer in [print] timeout_s): the job
follows the uninspectable cell — blocked toward unregistered printers by default, so
printing fails closed — and the decision is left in the outbox for the agent to record.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import BinaryIO, Mapping, Sequence
from urllib.parse import unquote, urlsplit

from baomi.common.events import file_obj, utcnow
from baomi.common.fsutil import private_dir
from baomi.common.levels import Level
from baomi.common.tomlconf import ConfigError
from ..config import AgentConfig, load
from ..decide.print import PrintFacts
from . import outbox
from .cups import (CUPS_BACKEND_CANCEL, CUPS_BACKEND_FAILED, CUPS_BACKEND_OK, JobTicket, is_wrapped,
                   ppd_make_model)
from .printers import PrinterRegistry, printer_obj
from .protocol import JobReply, JobRequest, ask


def say(line: str) -> None:
    """A message for cupsd (ERROR:/INFO: lines on stderr end up in the job's state)."""
    print(line, file=sys.stderr, flush=True)


def hold_stdin(stdin: BinaryIO, work: Path, job_id: int) -> str:
    path = work / f"in-{job_id}-{uuid.uuid4().hex}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        shutil.copyfileobj(stdin, out, 1024 * 1024)
    return str(path)


def request_for(ticket: JobTicket, data: str) -> JobRequest:
    return JobRequest(job_id=ticket.job_id, user=ticket.user, title=ticket.title, copies=ticket.copies,
                      printer=ticket.printer, device_uri=ticket.original_uri, make_model=ppd_make_model(ticket.ppd),
                      documents=ticket.documents(), data=data, content_type=ticket.content_type,
                      final_content_type=ticket.final_content_type)


def without_agent(cfg: AgentConfig, req: JobRequest, why: str, work: Path) -> JobReply:
    """No verdict: the uninspectable cell decides, and the outbox keeps the record."""
    from .jobs import decide_and_stamp, job_user, reply_for, uid_of
    record = PrinterRegistry.from_config(cfg.print.printer).lookup(req.printer, req.device_uri, cfg.host.class_)
    uid = uid_of(req.user)
    facts = PrintFacts(cfg.host.class_, "registered" if record else "unregistered",
                       record.level if record else None, Level.PUBLIC, inspectable=False, user_known=uid is not None)
    applied = decide_and_stamp(cfg, facts, req, work)
    outcome = applied.outcome
    outbox.leave(cfg.state_dir, {
        "severity": outcome.severity, "action": outcome.action, "rule": outcome.rule,
        "user": job_user(uid, req.user),
        "file": file_obj(req.title or "(untitled)", inspectable=False, reason="agent_unavailable"),
        "details": {"printer": printer_obj(req.printer, req.device_uri, req.make_model, record),
                    "job_id": req.job_id, "title": req.title, "pages": applied.pages, "copies": req.copies,
                    "job_user": req.user, "watermark": applied.watermark, "reason": outcome.reason,
                    "agent_unavailable": why, "decided_at": utcnow()}})
    if outcome.notify and uid is not None:
        tell_user(uid, outcome.notify, req, outcome.reason)
    return reply_for(applied, Level.PUBLIC,
                     "baomi: no verdict (the baomi agent is not running); blocked on this printer")


def tell_user(uid: int, key: str, req: JobRequest, reason: str) -> None:
    """Without the agent there is no helper channel: straight to the user's session bus, briefly."""
    from .. import notify
    summary, body = notify.render(key, notify.user_lang(uid), name=req.title, printer=req.printer, level_zh="",
                                  level_en="", reason=reason, why="the baomi agent is not running")
    try:
        notify.send_as_user(uid, summary, body, "critical", timeout=2.0)
    except Exception as exc:  # a notification must never decide whether the job prints
        say(f"INFO: baomi: user not notified ({exc})")


def deliver(ticket: JobTicket, path: str) -> int:
    """Send the cleared data to the device the queue had before baomi wrapped it."""
    uri = ticket.original_uri
    scheme = uri.split(":", 1)[0]
    if scheme == "file":  # cupsd writes file: devices itself; in a wrapped queue the backend does
        target = unquote(urlsplit(uri).path)
        with open(path, "rb") as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, 1024 * 1024)
        return CUPS_BACKEND_OK
    real = ticket.server_bin / "backend" / scheme
    if not real.is_file():
        say(f"ERROR: baomi: no CUPS backend for {scheme}: (looked for {real})")
        return CUPS_BACKEND_FAILED
    env = dict(os.environ, DEVICE_URI=uri)
    # like cupsd: a backend closed to others (0700) runs as root, any other as lp, reading its
    # data on stdin (the held file is root's alone)
    as_root = not real.stat().st_mode & 0o077
    args = [uri, str(ticket.job_id), ticket.user, ticket.title,
            str(ticket.copies) if ticket.file and as_root else "1", ticket.options]
    with open(path, "rb") as data:
        if as_root:
            done = subprocess.run([*args, path], executable=str(real), env=env, stdin=subprocess.DEVNULL)
        else:
            done = subprocess.run(args, executable=str(real), env=env, stdin=data, user="lp", group="lp")
    return done.returncode


def main(argv: Sequence[str] | None = None, config: str | None = None, env: Mapping[str, str] | None = None,
         stdin: BinaryIO | None = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    env = os.environ if env is None else env
    if len(argv) == 1:  # cupsd and lpinfo asking which devices this backend finds: none of its own
        return CUPS_BACKEND_OK
    try:
        ticket = JobTicket.from_backend(argv, env)
    except ValueError as exc:
        say(f"ERROR: baomi: {exc}")
        return CUPS_BACKEND_FAILED
    if not is_wrapped(ticket.device_uri):
        say(f"ERROR: baomi: device URI {ticket.device_uri!r} does not start with baomi:")
        return CUPS_BACKEND_CANCEL
    try:
        cfg = load(config)
    except ConfigError as exc:  # no policy to go by: nothing prints
        say(f"ERROR: baomi: configuration error, printing blocked: {exc}")
        return CUPS_BACKEND_CANCEL
    work = private_dir(cfg.state_dir / "print" / "jobs")
    data = ticket.file or hold_stdin(stdin or sys.stdin.buffer, work, ticket.job_id)
    req = request_for(ticket, data)
    try:
        reply = ask(str(cfg.print.socket), req, cfg.print.timeout_s)
    except (OSError, ValueError) as exc:
        reply = without_agent(cfg, req, f"{type(exc).__name__}: {exc}", work)
    try:
        if not reply.forward:
            say(f"ERROR: {reply.message}")
            return CUPS_BACKEND_CANCEL
        if reply.details.get("watermark"):
            say("INFO: baomi: watermarked")
        return deliver(ticket, reply.data)
    finally:
        for path in {data, reply.data} - {ticket.file}:
            if path and Path(path).parent == work:  # only what this backend or the agent made for the job
                Path(path).unlink(missing_ok=True)
