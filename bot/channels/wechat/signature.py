"""Callback signatures: SHA-1 over the sorted strings, compared in constant time, before the
body is even looked at; and the timestamp window that makes an old signed query useless."""

from __future__ import annotations

import hashlib
import hmac

from bot.errors import RequestRejected


def sign(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()  # noqa: S324 - WeChat's scheme


def verify(expected: str, given: str | None) -> None:
    if not given or not hmac.compare_digest(expected.encode(), given.lower().encode()):
        raise RequestRejected("bad signature", status=403)


def verify_query(token: str, signature: str | None, timestamp: str | None, nonce: str | None) -> None:
    if not timestamp or not nonce:
        raise RequestRejected("unsigned request", status=403)
    verify(sign(token, timestamp, nonce), signature)


def check_fresh(timestamp: str, now: float, window: int) -> int:
    """The timestamp as a number, if within ``window`` seconds of now."""
    if not timestamp.isdigit() or len(timestamp) > 12:
        raise RequestRejected("bad timestamp", status=403)
    value = int(timestamp)
    if abs(now - value) > window:
        raise RequestRejected("stale timestamp", status=403)
    return value
