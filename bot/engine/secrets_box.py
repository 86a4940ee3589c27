"""Sensitive answers at rest: sealed with AES-GCM under a key from settings, masked in logs."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bot.errors import StorageError
from observability.personal_numbers import Kind, keep_ends, replace_personal_numbers

_PREFIX = "v1:"
SEALED_MARK = "$sealed"
# What display masks hide (a six-digit code or a card is already redacted before storage).
_DISPLAYED = frozenset({Kind.ID_NUMBER, Kind.MOBILE})


class SecretBox:
    def __init__(self, secret: str) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"sealbot-state", info=b"answers").derive(
            secret.encode()
        )
        self._aead = AESGCM(key)

    def seal(self, value: Any) -> dict[str, str]:
        nonce = os.urandom(12)
        data = self._aead.encrypt(nonce, json.dumps(value, ensure_ascii=False).encode(), b"sealbot")
        return {SEALED_MARK: _PREFIX + base64.urlsafe_b64encode(nonce + data).decode()}

    def open(self, sealed: dict[str, str]) -> Any:
        token = sealed[SEALED_MARK]
        if not token.startswith(_PREFIX):
            raise StorageError("unknown sealed value version")
        raw = base64.urlsafe_b64decode(token[len(_PREFIX) :])
        try:
            plain = self._aead.decrypt(raw[:12], raw[12:], b"sealbot")
        except InvalidTag as exc:
            raise StorageError("a sealed value does not open with the configured key") from exc
        return json.loads(plain)


def is_sealed(value: Any) -> bool:
    return isinstance(value, dict) and SEALED_MARK in value and len(value) == 1


def mask(value: str) -> str:
    """Keep the first 3 and last 2 characters of an identifier: 110***2X, 138****5678."""
    return keep_ends(str(value))


def mask_text(text: str) -> str:
    """Mask ID numbers and mobile numbers wherever they appear in free text (display: staff
    views, suggestion buttons), by the shared rule set (``observability.personal_numbers``)."""
    return replace_personal_numbers(text, lambda _kind, number: mask(number), _DISPLAYED)
