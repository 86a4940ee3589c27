"""Secrets handling: password hashes, bearer tokens, keyed digests and field encryption.

Password hashing is memory-hard (argon2id) and therefore slow on purpose: call the ``*_async``
variants from request handlers so that the event loop keeps serving other users, and outside any
database transaction (a hash takes tens of milliseconds; a pooled connection held that long is
one that another request waits for). The async variants run in the hasher's own bounded thread
pool: each hash takes 64 MiB, so at most ``max_workers`` run at once, and a burst of logins
queues there instead of exhausting memory or the default executor that other blocking calls use.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import os
import secrets
import sys
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from argon2 import PasswordHasher as _Argon2Hasher
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import SecretStr

TOKEN_BYTES = 32
HASH_THREAD_NICENESS = 10
NONCE_BYTES = 12


class PasswordHasher:
    """argon2id with tunable cost; the defaults are the RFC 9106 low-memory recommendation."""

    def __init__(
        self,
        *,
        time_cost: int = 3,
        memory_cost_kib: int = 64 * 1024,
        parallelism: int = 4,
        max_workers: int = 2,
    ) -> None:
        self._hasher = _Argon2Hasher(
            time_cost=time_cost, memory_cost=memory_cost_kib, parallelism=parallelism, type=Type.ID
        )
        self._dummy_hash: str | None = None
        self._dummy_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="argon2", initializer=_lower_thread_priority
        )

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """``None`` (no such account) costs the same time as a real check, then fails: response
        time must not reveal whether a phone number is registered."""
        if password_hash is None:
            self.verify(self.dummy_hash(), password)
            return False
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)

    def dummy_hash(self) -> str:
        """A hash of a random secret, made once: verified against for unknown users."""
        with self._dummy_lock:
            if self._dummy_hash is None:
                self._dummy_hash = self.hash(new_token())
            return self._dummy_hash

    async def hash_async(self, password: str) -> str:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self.hash, password)

    async def verify_async(self, password_hash: str | None, password: str) -> bool:
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, self.verify, password_hash, password
        )

    async def dummy_hash_async(self) -> str:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self.dummy_hash)

    def close(self) -> None:
        """Stop the worker threads (after the last request; idempotent)."""
        self._executor.shutdown(wait=False, cancel_futures=True)


def _lower_thread_priority() -> None:
    """Hashing is bulk CPU work: let the event loop and the database have the CPU first.

    On Linux a nice value belongs to one thread (``PRIO_PROCESS`` with 0 is the calling thread)
    and the argon2 lane threads it starts inherit it; elsewhere the call would lower the whole
    process, so it is made only on Linux. Without it, a burst of registrations starved the
    event loop and short transactions waited seconds for their turn.
    """
    if sys.platform == "linux":
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, 0, HASH_THREAD_NICENESS)


def new_token() -> str:
    """An unguessable bearer token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_digest(token: str) -> str:
    """What is stored for a bearer token: a leaked table does not yield usable tokens.

    Plain SHA-256 suffices because tokens carry 256 bits of entropy; short secrets such as SMS
    codes need ``keyed_digest`` instead.
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def keyed_digest(key: bytes, value: str) -> str:
    """HMAC-SHA256 for low-entropy secrets (6-digit codes) that a plain hash would not protect."""
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def constant_time_equals(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def derive_key(secret: str, purpose: str, *, length: int = 32) -> bytes:
    """A key for one purpose from the platform secret, so that no two uses share a key."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=f"sealbot/{purpose}".encode())
    return hkdf.derive(secret.encode("utf-8"))


class FieldDecryptionError(Exception):
    """A stored ciphertext could not be decrypted (wrong key, tampered, unknown version)."""


class FieldCipher:
    """AES-256-GCM for sensitive columns, as ``<key id>:<base64url(nonce || ciphertext)>``.

    The key id names the key (a digest of it, never the key) so that a new secret can be
    introduced while rows written under an earlier one still decrypt, and ``sealbot rotate-keys``
    can tell which rows are not yet under the current key. ``v1`` is the label of values written
    before key ids existed: it is tried against every key of the ring. ``context`` (e.g.
    ``"account.id_number"``) is bound as associated data: a ciphertext copied into another column
    or row kind fails to decrypt instead of leaking there.
    """

    def __init__(self, keys: Mapping[str, bytes], current_version: str) -> None:
        if current_version not in keys:
            raise ValueError(f"no key for the current version {current_version!r}")
        if any(":" in version for version in keys):
            raise ValueError("key versions may not contain ':'")
        self._keys = {version: AESGCM(key) for version, key in keys.items()}
        self._current = current_version

    @classmethod
    def from_secret(cls, secret: str) -> FieldCipher:
        return cls.from_secrets(secret)

    @classmethod
    def from_secrets(cls, secret: str, old_secrets: str = "") -> FieldCipher:
        """The current secret writes; ``old_secrets`` (comma-separated) are still read."""
        keys: dict[str, bytes] = {}
        for each in [secret, *(s.strip() for s in old_secrets.split(",") if s.strip())]:
            key = derive_key(each, "field-encryption/v1")
            keys.setdefault(field_key_id(key), key)
        return cls(keys, field_key_id(derive_key(secret, "field-encryption/v1")))

    @property
    def current_version(self) -> str:
        return self._current

    def is_current(self, stored: str) -> bool:
        return stored.partition(":")[0] == self._current

    def encrypt(self, plaintext: str, *, context: str) -> str:
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._keys[self._current].encrypt(nonce, plaintext.encode("utf-8"), context.encode())
        return f"{self._current}:{base64.urlsafe_b64encode(nonce + sealed).decode('ascii')}"

    def decrypt(self, stored: str, *, context: str) -> str:
        version, sep, payload = stored.partition(":")
        if version == LEGACY_FIELD_VERSION and version not in self._keys:
            candidates = list(self._keys.values())
        else:
            aead = self._keys.get(version)
            candidates = [aead] if aead is not None else []
        if not sep or not candidates:
            raise FieldDecryptionError(f"unknown ciphertext version {version!r}")
        try:
            raw = base64.urlsafe_b64decode(payload.encode("ascii"))
        except ValueError as exc:
            raise FieldDecryptionError("ciphertext is not base64") from exc
        for aead in candidates:
            try:
                plaintext = aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode())
            except (InvalidTag, ValueError):
                continue
            return plaintext.decode("utf-8")
        raise FieldDecryptionError("ciphertext does not decrypt under its key")


LEGACY_FIELD_VERSION = "v1"


def field_key_id(key: bytes) -> str:
    """A stable, non-secret name of a field key (12 hex digits)."""
    return hashlib.sha256(b"field-key-id\x00" + key).hexdigest()[:12]


class _SecretSettings(Protocol):
    @property
    def secret_key(self) -> SecretStr: ...
    @property
    def old_secret_keys(self) -> SecretStr: ...


def field_cipher_of(settings: _SecretSettings) -> FieldCipher:
    """The field cipher of the platform's settings: writes under the current secret, reads old ones."""
    return FieldCipher.from_secrets(
        settings.secret_key.get_secret_value(), settings.old_secret_keys.get_secret_value()
    )
