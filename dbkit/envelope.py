"""Encryption at rest for blobs: AES-256-GCM, with the id of the key stored beside each value.

A sealed value is ``MAGIC | len(key id) | key id | nonce (12) | ciphertext+tag``. The key ring
holds the current key (new values) and earlier ones (reading values written before a
rotation), so keys can change without downtime: set the new secret, keep the old one in the
"old secrets" setting, run the rotation (each value is rewritten on its own, atomically), then
drop the old secret. The ``aad`` (the value's name, e.g. its content hash) binds a ciphertext
to its place, so two stored values cannot be swapped unnoticed.

Values without ``MAGIC`` are read as they are (written before encryption was switched on);
the rotation encrypts them too.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"\x00SBENC1"


class EnvelopeError(Exception):
    """A sealed value names a key the ring lacks, or does not open (tampered, wrong key)."""


def derive_key(secret: str, purpose: bytes) -> tuple[str, bytes]:
    """(key id, key) of a secret from settings; the id names the key, never reveals it."""
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"sealbot-envelope", info=purpose).derive(
        secret.encode()
    )
    return hashlib.sha256(b"key-id\x00" + key).hexdigest()[:12], key


class Keyring:
    def __init__(self, current: tuple[str, bytes], older: Iterable[tuple[str, bytes]] = ()) -> None:
        self.current_id = current[0]
        self._keys = {current[0]: AESGCM(current[1])}
        for key_id, key in older:
            self._keys.setdefault(key_id, AESGCM(key))

    @classmethod
    def from_secrets(cls, secret: str, old_secrets: str = "", *, purpose: bytes = b"blobs") -> Keyring:
        """``old_secrets``: earlier secrets, comma-separated, still accepted for reading."""
        older = [derive_key(s.strip(), purpose) for s in old_secrets.split(",") if s.strip()]
        return cls(derive_key(secret, purpose), older)

    def seal(self, data: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(12)
        key_id = self.current_id.encode()
        sealed = self._keys[self.current_id].encrypt(nonce, data, aad)
        return MAGIC + bytes([len(key_id)]) + key_id + nonce + sealed

    def open(self, value: bytes, aad: bytes) -> bytes:
        key_id = key_id_of(value)
        if key_id is None:
            return value  # stored before encryption was switched on
        aead = self._keys.get(key_id)
        if aead is None:
            raise EnvelopeError(f"no key {key_id} in the key ring (an old secret was dropped too early?)")
        start = len(MAGIC) + 1 + len(key_id)
        try:
            return aead.decrypt(value[start : start + 12], value[start + 12 :], aad)
        except InvalidTag as exc:
            raise EnvelopeError("a stored value does not open with its key") from exc

    def is_current(self, value: bytes) -> bool:
        return key_id_of(value) == self.current_id


def key_id_of(value: bytes) -> str | None:
    if not value.startswith(MAGIC) or len(value) <= len(MAGIC):
        return None
    size = value[len(MAGIC)]
    return value[len(MAGIC) + 1 : len(MAGIC) + 1 + size].decode("ascii", "replace")


def write_private(path: os.PathLike[str] | str, data: bytes) -> None:
    """Write a file readable by its owner only (0600, its directory 0700), atomically."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(target.parent, 0o700)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".write-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
