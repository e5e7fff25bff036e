"""The agent's own Ed25519 key and id: generated on first start, readable by root only."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from baomi.common.fsutil import fsync_dir
from baomi.common.keys import agent_id_for, load_private_pem, private_pem, public_raw


@dataclass
class Identity:
    key: Ed25519PrivateKey

    @property
    def public(self) -> bytes:
        return public_raw(self.key.public_key())

    @property
    def agent_id(self) -> str:
        return agent_id_for(self.public)

    def sign(self, data: bytes) -> bytes:
        return self.key.sign(data)


def load_or_create(state_dir: Path) -> Identity:
    """Read state_dir/agent.key, creating it (mode 0600) atomically on first use."""
    path = Path(state_dir) / "agent.key"
    if path.exists():
        return Identity(load_private_pem(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".agent.key.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, private_pem(Ed25519PrivateKey.generate()))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # fails if another process won the race; then use theirs
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    fsync_dir(path.parent)
    return load_or_create(state_dir)
