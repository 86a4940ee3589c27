"""Sensitive answers at rest: sealed with AES-GCM under a key from settings, masked in logs."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bot.errors import StorageError
from observability.personal_numbers import Kind, keep_ends, replace_personal_numbers

SEALED_MARK = "$sealed"
# What display masks hide (a six-digit code or a card is already redacted before storage).
_DISPLAYED = frozenset({Kind.ID_NUMBER, Kind.MOBILE})


class SecretBox:
    """AES-GCM for sensitive answers, as ``{"$sealed": "<key id>:<base64>"}``.

    The key id names the key (a digest, never the key): the current secret seals, earlier ones
    (``old_secrets``, comma-separated) still open what they sealed until ``sealbot rotate-keys``
    has resealed it (``reseal``). ``v1`` marks values sealed before key ids: every key is tried.
    """

    def __init__(self, secret: str, old_secrets: str = "") -> None:
        self._keys: dict[str, AESGCM] = {}
        for each in [secret, *(s.strip() for s in old_secrets.split(",") if s.strip())]:
            key = _derive(each)
            self._keys.setdefault(_key_id(key), AESGCM(key))
        self.current_id = next(iter(self._keys))  # the current secret's, inserted first

    def seal(self, value: Any) -> dict[str, str]:
        nonce = os.urandom(12)
        data = self._keys[self.current_id].encrypt(
            nonce, json.dumps(value, ensure_ascii=False).encode(), b"sealbot"
        )
        return {SEALED_MARK: f"{self.current_id}:" + base64.urlsafe_b64encode(nonce + data).decode()}

    def open(self, sealed: dict[str, str]) -> Any:
        version, sep, payload = sealed[SEALED_MARK].partition(":")
        if not sep:
            raise StorageError("unknown sealed value version")
        if version == _LEGACY:
            candidates = list(self._keys.values())
        elif version in self._keys:
            candidates = [self._keys[version]]
        else:
            raise StorageError(f"no key {version} for a sealed value (an old secret dropped too early?)")
        raw = base64.urlsafe_b64decode(payload)
        for aead in candidates:
            try:
                plain = aead.decrypt(raw[:12], raw[12:], b"sealbot")
            except InvalidTag:
                continue
            return json.loads(plain)
        raise StorageError("a sealed value does not open with the configured key")

    def is_current(self, sealed: dict[str, str]) -> bool:
        return sealed[SEALED_MARK].partition(":")[0] == self.current_id

    def reseal(self, value: Any) -> tuple[Any, int]:
        """``value`` (JSON data) with every sealed value not under the current key sealed anew;
        and how many were."""
        if is_sealed(value):
            return (value, 0) if self.is_current(value) else (self.seal(self.open(value)), 1)
        if isinstance(value, dict):
            count, out = 0, {}
            for key, item in value.items():
                out[key], n = self.reseal(item)
                count += n
            return out, count
        if isinstance(value, list):
            pairs = [self.reseal(item) for item in value]
            return [item for item, _ in pairs], sum(n for _, n in pairs)
        return value, 0


_LEGACY = "v1"


def _derive(secret: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"sealbot-state", info=b"answers").derive(
        secret.encode()
    )


def _key_id(key: bytes) -> str:
    return hashlib.sha256(b"answers-key-id\x00" + key).hexdigest()[:12]


def is_sealed(value: Any) -> bool:
    return isinstance(value, dict) and SEALED_MARK in value and len(value) == 1


def mask(value: str) -> str:
    """Keep the first 3 and last 2 characters of an identifier: 110***2X, 138****5678."""
    return keep_ends(str(value))


def mask_text(text: str) -> str:
    """Mask ID numbers and mobile numbers wherever they appear in free text (display: staff
    views, suggestion buttons), by the shared rule set (``observability.personal_numbers``)."""
    return replace_personal_numbers(text, lambda _kind, number: mask(number), _DISPLAYED)
