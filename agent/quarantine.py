"""The encrypted quarantine: blocked files, readable only with the security
administrator's private key.

Each entry is one file, state_dir/quarantine/<id>.bqe:

    b"BAOMIQ1\\n" | u32 header length | header JSON | chunks

The header holds what `quarantine list` shows (time, original path, medium,
size, sha256, level) and the file key sealed to the administrator's X25519
public key: an ephemeral X25519 key agreement, HKDF-SHA256 to a wrapping key,
AES-256-GCM over the random per-file key. The content follows as AES-256-GCM
chunks of 1 MiB (nonce prefix + chunk counter, the last chunk flagged in the
associated data), so truncation, reordering or tampering is detected and large
files never sit whole in memory.

An entry is written to a temporary name, fsynced, renamed and the folder
fsynced, so it either exists whole or not at all.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import struct
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from baomi.common.fsutil import atomic_write, private_dir
from baomi.common.keys import write_keypair

MAGIC = b"BAOMIQ1\n"
SUFFIX = ".bqe"
CHUNK = 1024 * 1024
_HKDF_INFO = b"baomi quarantine key wrap v1"
_LEN = struct.Struct(">I")


class QuarantineError(Exception):
    """A quarantine entry or key that cannot be used; the message says which and why."""


# -- keys ---------------------------------------------------------------------
def _raw(pub: X25519PublicKey) -> bytes:
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def load_public_key(path: str | Path) -> X25519PublicKey:
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        raise QuarantineError(f"{path}: cannot read the quarantine public key ({exc})") from None
    if not isinstance(key, X25519PublicKey):
        raise QuarantineError(f"{path}: not an X25519 public key (make one with `baomi-agent quarantine keygen`)")
    return key


def load_private_key(path: str | Path) -> X25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise QuarantineError(f"{path}: cannot read the private key ({exc})") from None
    if not isinstance(key, X25519PrivateKey):
        raise QuarantineError(f"{path}: not an X25519 private key")
    return key


def keygen(out_dir: str | Path) -> tuple[Path, Path]:
    """Write quarantine.key (0600) and quarantine.pub (PEM) into out_dir; refuse to overwrite."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    priv_path, pub_path = out / "quarantine.key", out / "quarantine.pub"
    for p in (priv_path, pub_path):
        if p.exists():
            raise QuarantineError(f"{p} already exists; refusing to overwrite a key")
    write_keypair(X25519PrivateKey.generate(), priv_path, pub_path)
    return priv_path, pub_path


def _wrapping_key(shared: bytes, eph: bytes, recipient: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=eph + recipient, info=_HKDF_INFO).derive(shared)


def seal_key(file_key: bytes, recipient: X25519PublicKey, aad: bytes) -> dict[str, str]:
    eph = X25519PrivateKey.generate()
    eph_pub, rcpt = _raw(eph.public_key()), _raw(recipient)
    wrap = _wrapping_key(eph.exchange(recipient), eph_pub, rcpt)
    nonce = os.urandom(12)
    return {"alg": "X25519-HKDF-SHA256-A256GCM", "ephemeral": eph_pub.hex(), "recipient": rcpt.hex(),
            "nonce": nonce.hex(), "wrapped": AESGCM(wrap).encrypt(nonce, file_key, aad).hex()}


def open_key(sealed: dict[str, str], private: X25519PrivateKey, aad: bytes) -> bytes:
    eph = bytes.fromhex(sealed["ephemeral"])
    rcpt = _raw(private.public_key())
    if rcpt.hex() != sealed.get("recipient"):
        raise QuarantineError("this entry was sealed to a different public key")
    wrap = _wrapping_key(private.exchange(X25519PublicKey.from_public_bytes(eph)), eph, rcpt)
    try:
        return AESGCM(wrap).decrypt(bytes.fromhex(sealed["nonce"]), bytes.fromhex(sealed["wrapped"]), aad)
    except Exception:
        raise QuarantineError("the file key does not open with this private key") from None


# -- entries ----------------------------------------------------------------------
@dataclass
class Entry:
    id: str
    header: dict[str, Any]
    path: Path

    def to_json(self) -> dict[str, Any]:
        h = self.header
        return {"id": self.id, "time": h.get("time"), "original_path": h.get("original_path"),
                "medium": h.get("medium"), "size": h.get("size"), "sha256": h.get("sha256"),
                "level": h.get("level"), "stored_bytes": self.path.stat().st_size}




def _chunk_aad(entry_id: str, index: int, last: bool) -> bytes:
    return f"{entry_id}:{index}:{int(last)}".encode()


def _read_header(f: BinaryIO, path: Path) -> dict[str, Any]:
    if f.read(len(MAGIC)) != MAGIC:
        raise QuarantineError(f"{path}: not a quarantine entry")
    raw = f.read(_LEN.size)
    if len(raw) != _LEN.size:
        raise QuarantineError(f"{path}: truncated header")
    (n,) = _LEN.unpack(raw)
    try:
        return json.loads(f.read(n).decode("utf-8"))
    except ValueError:
        raise QuarantineError(f"{path}: unreadable header") from None


class Quarantine:
    def __init__(self, root: str | Path, public_key: X25519PublicKey | None, max_bytes: int):
        self.root = Path(root)
        private_dir(self.root)
        self.public_key = public_key
        self.max_bytes = max_bytes

    def entry_path(self, entry_id: str) -> Path:
        return self.root / f"{entry_id}{SUFFIX}"

    def used_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.root.glob(f"*{SUFFIX}"))

    def has_room(self, size: int) -> bool:
        # ~ 16 bytes of tag per chunk and a header of a few KB on top of the content
        return self.used_bytes() + size + size // CHUNK * 20 + 8192 <= self.max_bytes

    def store(self, entry_id: str, src: BinaryIO, meta: dict[str, Any]) -> Entry:
        """Encrypt `src` (read from its current position) into a durable entry."""
        if self.public_key is None:
            raise QuarantineError("no quarantine public key configured ([quarantine] public_key)")
        file_key = AESGCM.generate_key(256)
        header = dict(meta, id=entry_id, version=1, chunk=CHUNK,
                      key=seal_key(file_key, self.public_key, entry_id.encode()))
        header.setdefault("time", _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
        prefix = os.urandom(8)
        header["nonce_prefix"] = prefix.hex()
        aes = AESGCM(file_key)
        final = self.entry_path(entry_id)
        hb = json.dumps(header, sort_keys=True, ensure_ascii=False).encode("utf-8")

        def write(out: BinaryIO) -> None:
            out.write(MAGIC + _LEN.pack(len(hb)) + hb)
            index, block = 0, src.read(CHUNK)
            while True:
                nxt = src.read(CHUNK) if block else b""
                last = not nxt
                ct = aes.encrypt(prefix + struct.pack(">I", index), block, _chunk_aad(entry_id, index, last))
                out.write(_LEN.pack(len(ct)) + ct)
                if last:
                    break
                index, block = index + 1, nxt
        atomic_write(final, write)
        return Entry(entry_id, header, final)

    def get(self, entry_id: str) -> Entry:
        path = self.entry_path(entry_id)
        if not path.exists():
            raise QuarantineError(f"no quarantine entry {entry_id!r} in {self.root}")
        with open(path, "rb") as f:
            return Entry(entry_id, _read_header(f, path), path)

    def entries(self) -> Iterator[Entry]:
        for path in sorted(self.root.glob(f"*{SUFFIX}")):
            try:
                with open(path, "rb") as f:
                    yield Entry(path.stem, _read_header(f, path), path)
            except (OSError, QuarantineError):
                continue
        return

    def discard_partial(self) -> None:
        """Remove temporary files of entries that were never completed (a crash mid-write)."""
        for tmp in self.root.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)

    def decrypt(self, entry_id: str, private: X25519PrivateKey, out: BinaryIO) -> dict[str, Any]:
        """Write the original bytes of an entry to `out`; verifies every chunk and the sha256."""
        import hashlib
        path = self.entry_path(entry_id)
        with open(path, "rb") as f:
            header = _read_header(f, path)
            aes = AESGCM(open_key(header["key"], private, entry_id.encode()))
            prefix = bytes.fromhex(header["nonce_prefix"])
            digest, index = hashlib.sha256(), 0
            while True:
                raw = f.read(_LEN.size)
                if len(raw) != _LEN.size:
                    raise QuarantineError(f"{path}: truncated (no final chunk)")
                ct = f.read(_LEN.unpack(raw)[0])
                nonce = prefix + struct.pack(">I", index)
                for last in (False, True):
                    try:
                        pt = aes.decrypt(nonce, ct, _chunk_aad(entry_id, index, last))
                        break
                    except Exception:
                        continue
                else:
                    raise QuarantineError(f"{path}: chunk {index} fails authentication (damaged or altered)")
                digest.update(pt)
                out.write(pt)
                if last:
                    break
                index += 1
        if header.get("sha256") and digest.hexdigest() != header["sha256"]:
            raise QuarantineError(f"{path}: content does not match the recorded sha256")
        return header


def new_entry_id() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:12]
