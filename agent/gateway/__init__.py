"""Hold until scanned: the user's mount point of a removable medium is a FUSE view
served by the agent; writes are staged on the host, judged at close, and only
clean content is committed to the medium (see docs/gateway.md)."""
from __future__ import annotations

from .available import available
from .types import FSTYPE, Judgement, Recovery, StagedFile

__all__ = ["Gateway", "Judgement", "Recovery", "StagedFile", "available", "FSTYPE"]


def __getattr__(name: str):
    # Gateway pulls in pyfuse3; importing the package must work without it so the
    # agent can ask available() and fall back.
    if name == "Gateway":
        from .gateway import Gateway
        return Gateway
    raise AttributeError(name)
