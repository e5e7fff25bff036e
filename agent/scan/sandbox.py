"""What a scan worker gives up before it reads a document. Parsers of office formats,
PDF, images and archives are large and a crafted document may exploit one; the worker
that runs them therefore holds no privilege: it becomes an unprivileged user
([scan] worker_user, by default the package's `baomi-scan`), keeps no supplementary
group and no capability, may never gain one again (no_new_privs), is not dumpable
(no process of that user may trace it or read its memory), has a network namespace
of its own with no interface up, and, where the kernel has Landlock, may create,
write, remove or rename no file (its Tesseract child neither), nor signal a process
or reach an abstract socket outside itself: what it reads cannot be sent or left
anywhere. It reads only the descriptors the agent hands it (agent/scan/opening.py)."""
from __future__ import annotations

import ctypes
import logging
import os
import pwd
import struct
import threading
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_USER = "baomi-scan"
FALLBACK_USER = "nobody"
_PR_SET_DUMPABLE = 4
_PR_SET_NO_NEW_PRIVS = 38
_CLONE_NEWNET = 0x40000000
# Landlock (linux/landlock.h): the same system call numbers on every architecture
_LANDLOCK_CREATE_RULESET, _LANDLOCK_ADD_RULE, _LANDLOCK_RESTRICT_SELF = 444, 445, 446
_LANDLOCK_CREATE_RULESET_VERSION = 1
_LANDLOCK_RULE_PATH_BENEATH = 1
_FS_WRITE_FILE = 1 << 1
# every right that changes the filesystem, by the ABI version that brought it: write,
# remove file and folder, make char/dir/reg/sock/fifo/block/sym; refer (2); truncate (3)
_FS_CHANGES = {1: (1 << 1) | sum(1 << b for b in range(4, 13)), 2: 1 << 13, 3: 1 << 14}
_NET_TCP = 0b11               # bind and connect (4)
_SCOPED = 0b11                # abstract unix sockets and signals (6)
MAX_REFUSED, MAX_REFUSED_CHARS = 10, 300   # of a worker's report (bounded: it is the worker's word)


@dataclass(frozen=True)
class Identity:
    name: str
    uid: int
    gid: int


@dataclass(frozen=True)
class Confinement:
    """How the latest scan worker of this process ran once it had confined itself, as the
    heartbeat reports it (`details.scan_workers`) so an administrator sees a weaker host."""
    user: str | None            # whom it became; None: it kept the agent's identity
    uid: int
    refused: tuple[str, ...]    # the steps the kernel or the service unit refused

    @property
    def state(self) -> str:
        """`root`: it parses documents with root's privileges; `partial`: a step was refused;
        `confined`: every step took."""
        return "root" if self.uid == 0 else "partial" if self.refused else "confined"

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state, "user": self.user, "uid": self.uid, "refused": list(self.refused)}


_latest: Confinement | None = None
_said: set[str] = set()
_lock = threading.Lock()


def note_worker(who: Identity | None, uid: int, refused: Any) -> list[str]:
    """Keeps what a worker reported once it was ready (the latest wins: every worker of a
    process is confined alike) and returns the refused steps not reported before, to be
    logged once per process."""
    global _latest
    steps = tuple(str(r)[:MAX_REFUSED_CHARS] for r in (refused if isinstance(refused, list) else [])[:MAX_REFUSED])
    with _lock:
        _latest = Confinement(who.name if who else None, uid, steps)
        new = [r for r in steps if r not in _said]
        _said.update(new)
    return new


def latest_confinement() -> Confinement | None:
    """What the latest worker reported; None until a worker has started in this process."""
    return _latest


def worker_identity(name: str) -> Identity | None:
    """Whom the workers become: None when they keep the agent's identity, because the
    agent is not root (it has nothing to give up) or the setting is empty or "root".
    A user that does not exist falls back to `nobody` (said as a warning unless it is the
    package's user, which a host without the package lacks)."""
    if os.geteuid() != 0 or name in ("", "root"):
        return None
    for candidate in (name, FALLBACK_USER):
        try:
            pw = pwd.getpwnam(candidate)
        except KeyError:
            if candidate != FALLBACK_USER:
                log.log(logging.DEBUG if candidate == DEFAULT_USER else logging.WARNING,
                        "scan workers: no user %r on this host, they run as %r", candidate, FALLBACK_USER)
            continue
        if pw.pw_uid == 0:
            log.warning("scan workers: user %r is root, so they keep root's privileges", candidate)
            return None
        return Identity(candidate, pw.pw_uid, pw.pw_gid)
    log.error("scan workers keep root's privileges: neither %r nor %r exists", name, FALLBACK_USER)
    return None


def confine(who: Identity | None) -> list[str]:
    """Confine this process for good: become who (None: keep the caller's identity, as
    a scan run by a user does, or root's where so configured), then no_new_privs, not
    dumpable, Landlock. Raises OSError when the kernel refuses the identity. Returns
    what of the rest it refused (a service unit that forbids namespaces, a kernel
    without Landlock): the worker runs, less confined, and the agent says so."""
    libc = ctypes.CDLL(None, use_errno=True)
    os.chdir("/")
    missing = []
    if who is not None:
        if libc.unshare(_CLONE_NEWNET) != 0:
            missing.append(f"no network namespace of its own ({os.strerror(ctypes.get_errno())})")
        os.setgroups([])
        os.setresgid(who.gid, who.gid, who.gid)
        os.setresuid(who.uid, who.uid, who.uid)   # all uids non-zero: every capability goes
    for option in (_PR_SET_NO_NEW_PRIVS, 1), (_PR_SET_DUMPABLE, 0):
        if libc.prctl(option[0], option[1], 0, 0, 0) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"prctl({option[0]}): {os.strerror(err)}")
    landlocked = _no_writes(libc)
    if landlocked:
        missing.append(landlocked)
    return missing


def _no_writes(libc: ctypes.CDLL) -> str | None:
    """A Landlock domain in which no file may be changed but /dev/null written
    (subprocess's DEVNULL). None, or why there is none (after no_new_privs)."""
    abi = libc.syscall(_LANDLOCK_CREATE_RULESET, None, 0, _LANDLOCK_CREATE_RULESET_VERSION)
    if abi < 1:
        return f"no Landlock in this kernel ({os.strerror(ctypes.get_errno())}): it may write files"
    fs = sum(bits for version, bits in _FS_CHANGES.items() if version <= abi)
    attr = (ctypes.c_uint64 * 3)(fs, _NET_TCP if abi >= 4 else 0, _SCOPED if abi >= 6 else 0)
    size = 24 if abi >= 6 else 16 if abi >= 4 else 8
    ruleset = libc.syscall(_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), 0)
    if ruleset < 0:
        return f"Landlock refused a ruleset ({os.strerror(ctypes.get_errno())}): it may write files"
    try:
        null = os.open("/dev/null", os.O_PATH | os.O_CLOEXEC)
        try:
            beneath = struct.pack("=Qi", _FS_WRITE_FILE, null)    # landlock_path_beneath_attr, packed
            if libc.syscall(_LANDLOCK_ADD_RULE, ruleset, _LANDLOCK_RULE_PATH_BENEATH, beneath, 0) != 0:
                return f"Landlock refused a rule ({os.strerror(ctypes.get_errno())}): it may write files"
        finally:
            os.close(null)
        if libc.syscall(_LANDLOCK_RESTRICT_SELF, ruleset, 0) != 0:
            return f"Landlock refused to confine it ({os.strerror(ctypes.get_errno())}): it may write files"
    finally:
        os.close(ruleset)
    return None
