"""The agent's own Ed25519 key and id: generated on first start, readable by root only."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


def public_raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def agent_id_for(public: bytes) -> str:
    """An agent's id is derived from its public key, so it cannot be claimed without the key."""
    return hashlib.sha256(public).hexdigest()[:32]


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
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path}: not an Ed25519 private key")
        return Identity(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    tmp = path.with_name(f".agent.key.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # fails if another process won the race; then use theirs
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    return load_or_create(state_dir)
