"""Values exchanged between the gateway and the agent."""
from __future__ import annotations

import errno as _errno
from dataclasses import dataclass, field
from pathlib import Path

SUBTYPE = "baomi-gateway"
FSTYPE = f"fuse.{SUBTYPE}"          # how our mounts show in /proc/self/mountinfo
COMMIT_PREFIX = ".baomi-commit-"    # temporary names on the medium, hidden from the view


@dataclass(frozen=True)
class StagedFile:
    """One file held on the host, handed to the judge.

    host_path is only valid while the judge runs: copy it (e.g. to the quarantine)
    there if it is needed later.
    """
    key: str                 # medium key given to attach()
    relpath: str             # path relative to the medium root
    host_path: Path          # the staged copy
    size: int
    pid: int                 # the writer (the process that opened it for writing)
    uid: int
    gid: int
    medium_gone: bool = False   # the medium vanished: nothing will be committed
    complete: bool = True       # False when the writer had not closed the file yet
    recovered: bool = False     # re-judged after an agent restart


@dataclass(frozen=True)
class Judgement:
    commit: bool
    errno: int = _errno.EACCES      # what close() returns when refused
    reason: str = ""


@dataclass
class Recovery:
    stale_mounts: list[str] = field(default_factory=list)   # lazily unmounted
    reattached: list[str] = field(default_factory=list)     # media keys served again
    committed: list[tuple[str, str]] = field(default_factory=list)   # (key, relpath)
    refused: list[tuple[str, str]] = field(default_factory=list)
    lost: list[tuple[str, str]] = field(default_factory=list)
    waiting: list[tuple[str, str]] = field(default_factory=list)    # medium absent; kept


class GatewayError(RuntimeError):
    """The gateway could not hold this medium (the agent falls back to after_write)."""
