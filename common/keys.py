"""Ed25519 keys as both sides use them: raw public bytes, an agent's id, PEM loading."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


def public_raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def agent_id_for(public: bytes) -> str:
    """An agent's id is derived from its public key, so it cannot be claimed without the key."""
    return hashlib.sha256(public).hexdigest()[:32]


def load_private_pem(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path}: not an Ed25519 private key")
    return key


def private_pem(key: Any) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def write_keypair(key: Any, private_path: Path | str, public_path: Path | str) -> None:
    """Write a new private key (PEM, 0600, never over an existing file) and its public key (PEM).
    Works for Ed25519 and X25519 keys alike."""
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private_pem(key))
        f.flush()
        os.fsync(f.fileno())
    Path(public_path).write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
