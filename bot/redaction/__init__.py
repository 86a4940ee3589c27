"""One redaction step for what users type, applied before anything is stored.

Every channel hands its inbound messages to the engine, and the engine writes the receipt
(``inbound_receipts``, from which transcripts, support views and logs are built) only from
what :func:`redact` returns. What it removes:

- the account's own password, typed into the chat by mistake soon after the password page was
  used (recognised against a salted scrypt hash kept in the conversation for a short while);
- one-time codes (6 digits) and UKey PINs (a short all-digit message);
- ID numbers, mobile numbers and bank card numbers inside free text (masked, so staff still
  see the shape of what was sent).

Whatever was removed is replaced by a marker; the user gets one short warning when it looked
like a password. The flow itself still sees the original text (a code typed at its step must
be checked), only storage does not.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.engine.secrets_box import mask
from observability.personal_numbers import Kind, luhn_valid, replace_personal_numbers

# How long after the password page the chat watches for the password typed in clear.
ECHO_WINDOW = timedelta(minutes=30)
ECHO_KEY = "_password_echo"  # state.memory[ECHO_KEY]: {"salt", "hash", "until"}
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}

PASSWORD_MARK = "[已隐藏的密码 / password removed]"
CODE_MARK = "[已隐藏的数字 / number removed]"

_ONLY_DIGITS = re.compile(r"^\s*\d[\d\s-]{2,12}\d\s*$")
_PASSWORD_LIKE = re.compile(r"^\S{8,64}$")


@dataclass(frozen=True)
class Redacted:
    text: str
    password: bool = False  # the account's password was typed: warn the user


def _stored_form(kind: Kind, number: str) -> str | None:
    if kind is Kind.CARD:
        digits = re.sub(r"\D", "", number)
        # Not a card unless its check digit says so (order numbers, long amounts stay).
        return "*" * (len(digits) - 4) + digits[-4:] if luhn_valid(digits) else None
    if kind is Kind.CODE:
        return CODE_MARK
    return mask(number)


def mask_free_text(text: str) -> str:
    """Bank cards (Luhn-valid 16-19 digits), ID numbers, mobiles and 6-digit codes in text, by
    the shared rule set (``observability.personal_numbers``)."""
    return replace_personal_numbers(text, _stored_form)


def _scrypt(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)


async def remember_password(memory: dict[str, Any], password: str, now: datetime) -> None:
    """Keep a salted hash of a password just set or used on the page, for ``ECHO_WINDOW``."""
    salt = os.urandom(16)
    digest = await asyncio.to_thread(_scrypt, password, salt)
    memory[ECHO_KEY] = {
        "salt": base64.b64encode(salt).decode(),
        "hash": base64.b64encode(digest).decode(),
        "until": (now + ECHO_WINDOW).isoformat(),
    }


async def _is_password(memory: dict[str, Any], text: str, now: datetime) -> bool:
    echo = memory.get(ECHO_KEY)
    if not isinstance(echo, dict):
        return False
    if datetime.fromisoformat(echo["until"]) <= now:
        memory.pop(ECHO_KEY, None)  # expired: forget the hash too
        return False
    candidate = text.strip()
    if not _PASSWORD_LIKE.fullmatch(candidate):
        return False
    digest = await asyncio.to_thread(_scrypt, candidate, base64.b64decode(echo["salt"]))
    return hmac.compare_digest(digest, base64.b64decode(echo["hash"]))


async def redact(text: str, memory: dict[str, Any], now: datetime, *, secret_step: bool = False) -> Redacted:
    """What may be stored of ``text``. ``secret_step``: the user answers a question whose
    answer is sensitive (an ID number, a code): nothing of it is kept."""
    if not text:
        return Redacted(text)
    # (``ECHO_KEY`` is looked up first: most messages come with no password to compare with)
    if ECHO_KEY in memory and await _is_password(memory, text, now):
        return Redacted(PASSWORD_MARK, password=True)
    if secret_step:
        return Redacted("******")
    if _ONLY_DIGITS.fullmatch(text) and 4 <= len(re.sub(r"\D", "", text)) <= 10:
        return Redacted(CODE_MARK)  # a code or a PIN sent on its own
    return Redacted(mask_free_text(text))
