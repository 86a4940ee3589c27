"""Signed single-use links to the password page.

A link names the conversation, the purpose and a nonce, and expires after ``PAGE_TTL``. The
signature proves the bot made it; single use comes from the conversation: only the nonce of
the Wait the conversation is parked at is accepted, and a success moves the conversation on.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, unquote

from bot.engine.messages import ConversationKey

PAGE_TTL = timedelta(minutes=10)
PAGE_PATH = "/secure/password"
PURPOSES = ("register", "login", "reset")


class LinkRefused(Exception):
    """``reason``: invalid, expired, used, other_browser."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class PageLink:
    key: ConversationKey
    purpose: str
    nonce: str
    expires: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class PageLinks:
    def __init__(self, secret: str, public_base_url: str) -> None:
        self._key = hashlib.sha256(b"sealbot-secure-page\x00" + secret.encode()).digest()
        self.base_url = public_base_url.rstrip("/")

    def mac(self, *parts: str) -> str:
        message = "\x1f".join(parts).encode()
        return _b64(hmac.new(self._key, message, hashlib.sha256).digest())

    def token(self, key: ConversationKey, purpose: str, nonce: str, expires: datetime) -> str:
        if purpose not in PURPOSES:
            raise ValueError(f"unknown password page purpose {purpose!r}")
        body = json.dumps(
            {"k": str(key), "p": purpose, "n": nonce, "e": int(expires.timestamp())}, separators=(",", ":")
        )
        payload = _b64(body.encode())
        return f"{payload}.{self.mac('link', payload)}"

    def url(self, key: ConversationKey, purpose: str, nonce: str, expires: datetime) -> str:
        return f"{self.base_url}{PAGE_PATH}?t={quote(self.token(key, purpose, nonce, expires))}"

    def read(self, token: str, now: datetime, *, check_expiry: bool = True) -> PageLink:
        """The link's content, or ``LinkRefused`` (forged or expired)."""
        payload, _, signature = token.partition(".")
        if not payload or not hmac.compare_digest(signature, self.mac("link", payload)):
            raise LinkRefused("invalid")
        try:
            data = json.loads(_unb64(payload))
            link = PageLink(
                key=ConversationKey.parse(str(data["k"])),
                purpose=str(data["p"]),
                nonce=str(data["n"]),
                expires=datetime.fromtimestamp(int(data["e"]), UTC),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise LinkRefused("invalid") from exc
        if check_expiry and now >= link.expires:
            raise LinkRefused("expired")
        return link

    def token_of_url(self, url: str) -> str | None:
        """The token of a page link made by this service (the terminal chat opens it itself)."""
        prefix = f"{self.base_url}{PAGE_PATH}?t="
        if not url.startswith(prefix):
            return None
        return unquote(url[len(prefix) :])
