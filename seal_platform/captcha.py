"""Image captchas for SMS sends from the web chat (``captcha`` draws the image).

Stateless until used: the token carries its expiry and a nonce, bound by an HMAC to the answer,
so the platform stores nothing for captchas nobody solves. A solved captcha is spent by the one
SMS it allowed (the nonce is unique on ``sms_codes``).
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from datetime import datetime

from captcha.image import ImageCaptcha

from seal_platform.errors import InvalidInput
from seal_platform.security import constant_time_equals, derive_key, keyed_digest

# No 0/O, 1/I/L: a person must be able to read it.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
LENGTH = 4
TTL_SECONDS = 300


class CaptchaRequired(InvalidInput):
    code = "sms_captcha_required"


class CaptchaWrong(InvalidInput):
    code = "sms_captcha_wrong"


@dataclass(frozen=True)
class Captcha:
    token: str
    png: bytes


def _key(secret: str) -> bytes:
    return derive_key(secret, "sms-captcha")


def _mac(secret: str, expires: int, nonce: str, answer: str) -> str:
    return keyed_digest(_key(secret), f"{expires}.{nonce}.{answer.strip().upper()}")[:32]


def new_answer() -> str:
    """The random text of a new captcha (the seam where tests, which read no images, choose)."""
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


async def issue(secret: str, now: datetime, answer: str | None = None) -> Captcha:
    """A new captcha showing ``answer``, random unless given."""
    answer = answer or new_answer()
    expires = int(now.timestamp()) + TTL_SECONDS
    nonce = secrets.token_hex(8)
    png = await asyncio.to_thread(lambda: ImageCaptcha(width=160, height=60).generate(answer).getvalue())
    return Captcha(token=f"{expires}.{nonce}.{_mac(secret, expires, nonce, answer)}", png=png)


def verify(secret: str, now: datetime, token: str, answer: str) -> str:
    """The token's nonce when ``answer`` solves it in time, else ``CaptchaWrong``."""
    try:
        expires_text, nonce, mac = token.split(".")
        expires = int(expires_text)
    except ValueError as exc:
        raise CaptchaWrong("图形验证码无效，请重新获取") from exc
    if now.timestamp() > expires:
        raise CaptchaWrong("图形验证码已过期，请重新获取")
    if not constant_time_equals(_mac(secret, expires, nonce, answer), mac):
        raise CaptchaWrong("图形验证码不正确，请重新输入")
    return nonce
