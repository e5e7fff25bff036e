"""The CUPS side: the queues of a CUPS server (through CUPS's own lpstat, lpoptions and
lpadmin, so any server the admin tools reach works: the local socket, a test server's
socket path, host:port), the device URIs baomi wraps, and what cupsd hands a backend."""
from __future__ import annotations

import os
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

SCHEME = "baomi"
PREFIX = f"{SCHEME}:"
CUPS_BACKEND_OK = 0
CUPS_BACKEND_FAILED = 1
CUPS_BACKEND_CANCEL = 5   # cupsd cancels the job: nothing is retried, nothing is printed


class CupsError(RuntimeError):
    pass


def wrap(uri: str) -> str:
    return uri if is_wrapped(uri) else PREFIX + uri


def unwrap(uri: str) -> str:
    return uri[len(PREFIX):] if is_wrapped(uri) else uri


def is_wrapped(uri: str) -> bool:
    return uri.startswith(PREFIX)


@dataclass(frozen=True)
class Queue:
    name: str
    uri: str
    make_model: str = ""


@dataclass
class Cups:
    """One CUPS server. `server` as for `lp -h` ("" = CUPS's own default)."""
    server: str = ""
    timeout_s: float = 30.0

    def _run(self, tool: str, *args: str) -> str:
        cmd = [tool, *(("-h", self.server) if self.server else ()), *args]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=self.timeout_s)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise CupsError(f"{tool}: {exc}") from None
        if done.returncode != 0:
            raise CupsError(f"{' '.join(cmd)}: {done.stderr.strip() or f'exit {done.returncode}'}")
        return done.stdout

    def names(self) -> list[str]:
        try:
            out = self._run("lpstat", "-e")
        except CupsError as exc:
            if "No destinations" in str(exc):
                return []
            raise
        return [line.strip() for line in out.splitlines() if line.strip()]

    def attributes(self, name: str) -> dict[str, str]:
        """The queue's attributes as `lpoptions -p` lists them (device-uri, printer-make-and-model…)."""
        out = self._run("lpoptions", "-p", name)
        attrs: dict[str, str] = {}
        for item in shlex.split(out):
            key, _, value = item.partition("=")
            attrs[key] = value
        return attrs

    def queues(self) -> list[Queue]:
        out = []
        for name in self.names():
            attrs = self.attributes(name)
            out.append(Queue(name, attrs.get("device-uri", ""), attrs.get("printer-make-and-model", "")))
        return out

    def set_device(self, name: str, uri: str) -> None:
        self._run("lpadmin", "-p", name, "-v", uri)


@dataclass(frozen=True)
class JobTicket:
    """What cupsd hands a backend: argv (job id, user, title, copies, options[, file]) and
    its environment (DEVICE_URI, PRINTER, CUPS_REQUESTROOT…)."""
    job_id: int
    user: str
    title: str
    copies: int
    options: str
    file: str | None               # the data to print; None: it comes on stdin
    device_uri: str                # the wrapped URI, baomi:<original>
    printer: str
    content_type: str = ""         # the document's type as submitted
    final_content_type: str = ""   # what the queue's filters turn it into ("" on a raw queue)
    request_root: Path = Path("/var/spool/cups")
    server_bin: Path = Path("/usr/lib/cups")
    ppd: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_backend(cls, argv: Sequence[str], env: Mapping[str, str]) -> "JobTicket":
        if len(argv) not in (6, 7):
            raise ValueError(f"usage: {SCHEME} job-id user title copies options [file] (got {len(argv) - 1} arguments)")
        try:
            job_id, copies = int(argv[1]), int(argv[4] or "1")
        except ValueError:
            raise ValueError(f"job id and copies must be numbers, got {argv[1]!r} and {argv[4]!r}") from None
        return cls(job_id=job_id, user=argv[2], title=argv[3], copies=copies, options=argv[5],
                   file=argv[6] if len(argv) == 7 else None,
                   device_uri=env.get("DEVICE_URI", argv[0]), printer=env.get("PRINTER", ""),
                   content_type=env.get("CONTENT_TYPE", ""), final_content_type=env.get("FINAL_CONTENT_TYPE", ""),
                   request_root=Path(env.get("CUPS_REQUESTROOT", "/var/spool/cups")),
                   server_bin=Path(env.get("CUPS_SERVERBIN", "/usr/lib/cups")), ppd=env.get("PPD", ""))

    @property
    def original_uri(self) -> str:
        return unwrap(self.device_uri)

    def documents(self) -> list[str]:
        """The job's documents as submitted, in cupsd's spool (d<job>-<n>): the user's PDF,
        PostScript or text, before any filter turned it into the printer's language."""
        prefix = f"d{self.job_id:05d}-"
        try:
            names = sorted(n for n in os.listdir(self.request_root) if n.startswith(prefix))
        except OSError:
            return []
        return [str(self.request_root / n) for n in names]


def ppd_make_model(ppd: str) -> str:
    """The *NickName (else *ModelName) of a queue's PPD, for the event's printer object."""
    if not ppd:
        return ""
    try:
        with open(ppd, encoding="latin-1") as f:
            for line in f:
                if line.startswith(("*NickName:", "*ModelName:")):
                    return line.split(":", 1)[1].strip().strip('"')
    except OSError:
        pass
    return ""
