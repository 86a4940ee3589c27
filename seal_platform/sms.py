"""SMS verification codes: issue, send through a provider, check.

Codes are 6 digits from ``secrets``, stored only as an HMAC (a plain hash of a 6-digit number is
reversed by trying all million), valid for ``settings.sms_code_ttl_seconds``, and die after
``settings.sms_max_attempts`` tries. Only the newest code of a (phone, purpose) counts.

Attempts are reserved *before* the comparison, in their own committed transaction: a check that
fails makes its caller roll back, and counting first means parallel guesses cannot exceed the
limit. Hence the rule for callers: call ``verify_code`` while holding no session (it opens its
own; a request never holds two connections), then ``consume_code`` in the transaction that acts.

Sending is split the same way, because a gateway may take seconds and a pooled connection held
meanwhile starves every other request: ``reserve_code`` checks the limits and records the code
(``delivery`` = pending) in the caller's short transaction; ``deliver_code``, called with no
session held, talks to the provider and then records the outcome (sent / failed) in a second
short transaction. A failed send still counts toward every limit except the resend cooldown, so
the user may ask again at once, and its code can never be used.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import ColumnElement, Integer, String, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from dbkit.types import UtcDateTime
from seal_platform.db import Base, utcnow
from seal_platform.errors import InvalidInput, PlatformError, RateLimited, UpstreamError
from seal_platform.security import constant_time_equals, derive_key, keyed_digest
from seal_platform.validation import mask_mobile, normalise_mobile

if TYPE_CHECKING:
    from seal_platform.services import PlatformServices

log = logging.getLogger(__name__)

CODE_DIGITS = 6
# Bounds the cost of one phone number (and of abuse aimed at someone else's phone) per day.
DAILY_LIMIT_PER_PHONE = 20
SIGNATURE = "【电子印章】"


class Delivery(StrEnum):
    PENDING = "pending"  # recorded; the provider is being asked (or the process died meanwhile)
    SENT = "sent"
    FAILED = "failed"  # the provider refused or failed: counts toward the limits, never verifies


class SmsPurpose(StrEnum):
    REGISTER = "register"
    LOGIN = "login"
    CANCEL_SEAL = "cancel_seal"
    RESET_PASSWORD = "reset_password"


PURPOSE_LABELS = {
    SmsPurpose.REGISTER: "注册账号",
    SmsPurpose.LOGIN: "登录",
    SmsPurpose.CANCEL_SEAL: "注销印章",
    SmsPurpose.RESET_PASSWORD: "重置密码",
}

# Codes that confirm an action of a logged-in account go only to that account's own phone.
ACCOUNT_BOUND_PURPOSES = frozenset({SmsPurpose.CANCEL_SEAL})


class SmsCode(Base):
    __tablename__ = "sms_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    phone: Mapped[str] = mapped_column(String(11), index=True)
    purpose: Mapped[str] = mapped_column(String(32))
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    consumed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    # Who asked, as the bot reports it: the abuse limits count by these (``SendOrigin``).
    identity: Mapped[str | None] = mapped_column(String(128), index=True, default=None)
    client_ip: Mapped[str | None] = mapped_column(String(64), index=True, default=None)
    # The solved captcha this send used up; unique, so one solution allows one SMS.
    captcha_nonce: Mapped[str | None] = mapped_column(String(32), unique=True, default=None)
    # ``Delivery``; rows of before the column existed were sent within their transaction.
    delivery: Mapped[str] = mapped_column(String(16), default=Delivery.SENT.value, server_default="sent")


@dataclass(frozen=True)
class SendOrigin:
    """Who asks for a code, as the calling service (the bot) reports it.

    ``identity`` is the chat identity ("wechat:<openid>", "telegram:<user id>", "web:<session>"),
    ``client_ip`` the web chat visitor's address; ``captcha_*`` the image captcha the web chat
    asks for after a few sends (``captcha.py``).
    """

    identity: str | None = None
    client_ip: str | None = None
    captcha_token: str | None = None
    captcha_answer: str | None = None

    @property
    def is_web(self) -> bool:
        return bool(self.client_ip) or (self.identity or "").startswith("web:")


@dataclass(frozen=True)
class SmsMessage:
    """One text message. ``template`` and ``params`` are for providers that send by template
    (mainland SMS gateways only deliver pre-approved templates); ``text`` is the rendered body."""

    phone: str
    text: str
    template: str
    params: dict[str, str]


class SmsProvider(Protocol):
    async def send(self, message: SmsMessage) -> None:
        """Deliver the message or raise ``UpstreamError``."""
        ...


@dataclass(frozen=True)
class ConsoleSms:
    phone: str
    purpose: str
    code: str
    text: str
    sent_at: datetime


@dataclass
class ConsoleSmsProvider:
    """The embedded default: logs each message and keeps the latest ones for the dev page."""

    keep: int = 50
    sent: deque[ConsoleSms] = field(init=False)

    def __post_init__(self) -> None:
        self.sent = deque(maxlen=self.keep)

    async def send(self, message: SmsMessage) -> None:
        self.sent.append(
            ConsoleSms(
                phone=message.phone,
                purpose=message.params.get("purpose", ""),
                code=message.params.get("code", ""),
                text=message.text,
                sent_at=utcnow(),
            )
        )
        # Never the text: it holds the code, and whoever reads logs must not be able to use it.
        log.warning(
            "console SMS to %s (%s); read it on the dev SMS page",
            mask_mobile(message.phone),
            message.params.get("purpose", ""),
        )

    def latest(self, limit: int | None = None) -> list[ConsoleSms]:
        newest_first = list(reversed(self.sent))
        return newest_first if limit is None else newest_first[:limit]

    def last_code(self, phone: str, purpose: str | None = None) -> str:
        """The code last sent to a phone, read back as a person would read their SMS."""
        for sms in reversed(self.sent):
            if sms.phone == phone and (purpose is None or sms.purpose == purpose):
                found = re.search(r"\d{6}", sms.text)
                if found:
                    return found.group(0)
        raise LookupError(f"no code was sent to {mask_mobile(phone)}")


def _code_key(services: PlatformServices) -> bytes:
    return derive_key(services.settings.secret_key.get_secret_value(), "sms-code")


@dataclass(frozen=True)
class SentCode:
    phone: str
    purpose: SmsPurpose
    expires_at: datetime
    resend_after_seconds: int


@dataclass(frozen=True)
class ReservedCode:
    """A code recorded by ``reserve_code`` and not yet handed to the provider."""

    id: int
    message: SmsMessage
    sent: SentCode


async def reserve_code(
    session: AsyncSession,
    services: PlatformServices,
    phone: str,
    purpose: SmsPurpose,
    origin: SendOrigin | None = None,
) -> ReservedCode:
    """Check every limit and record a new code for (phone, purpose), pending delivery.

    The previous code stops counting. Nothing is sent: commit, release the session, then call
    ``deliver_code`` (see the module).
    """
    origin = origin or SendOrigin()
    phone = normalise_mobile(phone)
    settings = services.settings
    now = services.clock.now()
    latest = await _latest_code(session, phone, purpose)
    if latest is not None:
        ready_at = latest.created_at + timedelta(seconds=settings.sms_resend_cooldown_seconds)
        if now < ready_at:
            wait = max(1, int((ready_at - now).total_seconds() + 0.999))
            raise RateLimited(f"验证码已发送，请{wait}秒后再试", code="sms_resend_cooldown", retry_after=wait)
    sent_today = await session.scalar(
        select(func.count(SmsCode.id)).where(
            SmsCode.phone == phone, SmsCode.created_at > now - timedelta(days=1)
        )
    )
    if (sent_today or 0) >= DAILY_LIMIT_PER_PHONE:
        raise RateLimited("今日验证码发送次数已达上限", code="sms_daily_limit", retry_after=3600)

    captcha_nonce = await check_abuse_limits(session, services, origin, now)

    code = "".join(secrets.choice("0123456789") for _ in range(CODE_DIGITS))
    expires_at = now + timedelta(seconds=settings.sms_code_ttl_seconds)
    row = SmsCode(
        phone=phone,
        purpose=purpose.value,
        code_hash=keyed_digest(_code_key(services), code),
        created_at=now,
        expires_at=expires_at,
        attempts=0,
        identity=(origin.identity or None) and origin.identity[:128],
        client_ip=(origin.client_ip or None) and origin.client_ip[:64],
        captcha_nonce=captcha_nonce,
        delivery=Delivery.PENDING.value,
    )
    session.add(row)
    await session.flush()
    minutes = max(1, settings.sms_code_ttl_seconds // 60)
    text = (
        f"{SIGNATURE}您的验证码为{code}，用于{PURPOSE_LABELS[purpose]}，{minutes}分钟内有效。"
        "请勿将验证码告诉他人。"
    )
    message = SmsMessage(
        phone=phone,
        text=text,
        template="verification_code",
        params={"code": code, "purpose": purpose.value, "minutes": str(minutes)},
    )
    sent = SentCode(
        phone=phone,
        purpose=purpose,
        expires_at=expires_at,
        resend_after_seconds=settings.sms_resend_cooldown_seconds,
    )
    return ReservedCode(id=row.id, message=message, sent=sent)


async def deliver_code(services: PlatformServices, reserved: ReservedCode) -> SentCode:
    """Hand a reserved code to the provider, then record the outcome in a short transaction.

    The caller must hold no session: the provider may take seconds, and this opens its own
    session afterwards. On failure the code is marked failed (it never verifies, the cooldown
    does not apply, the limits still count it) and the provider's refusal is raised.
    """
    try:
        await services.sms_provider.send(reserved.message)
    except PlatformError:
        await _record_delivery(services, reserved.id, Delivery.FAILED)
        raise  # the provider's own answer for the user (rate limited, number blocked, ...)
    except Exception as exc:
        await _record_delivery(services, reserved.id, Delivery.FAILED)
        raise UpstreamError("短信发送失败，请稍后再试", code="sms_send_failed") from exc
    await _record_delivery(services, reserved.id, Delivery.SENT)
    return reserved.sent


async def _record_delivery(services: PlatformServices, code_id: int, outcome: Delivery) -> None:
    async with services.db.session() as session:
        await session.execute(
            update(SmsCode)
            .where(SmsCode.id == code_id, SmsCode.delivery == Delivery.PENDING.value)
            .values(delivery=outcome.value)
        )


async def send_code(
    services: PlatformServices,
    phone: str,
    purpose: SmsPurpose,
    origin: SendOrigin | None = None,
) -> SentCode:
    """``reserve_code`` in its own short transaction, then ``deliver_code`` (no session held)."""
    async with services.db.session() as session:
        reserved = await reserve_code(session, services, phone, purpose, origin)
    return await deliver_code(services, reserved)


async def verify_code(services: PlatformServices, *, phone: str, purpose: SmsPurpose | str, code: str) -> int:
    """Check ``code`` against the newest code of (phone, purpose); returns that code's id.

    Runs in its own short transaction, which also commits the counted attempt, so the caller
    must hold no session while calling it (one connection per request); the caller then spends
    the code with ``consume_code`` in the transaction that acts on it.

    Raises ``InvalidInput`` with code ``sms_code_missing``, ``sms_code_expired``,
    ``sms_code_exhausted`` or ``sms_code_wrong`` (details: ``attempts_left``).
    """
    phone = normalise_mobile(phone)
    purpose = SmsPurpose(purpose)
    settings = services.settings
    now = services.clock.now()
    async with services.db.session() as session:
        latest = await _latest_code(session, phone, purpose)
        if latest is None or latest.consumed_at is not None:
            raise InvalidInput("请先获取验证码", code="sms_code_missing")
        if latest.attempts >= settings.sms_max_attempts:
            raise InvalidInput("验证码错误次数过多，请重新获取", code="sms_code_exhausted")
        if now >= latest.expires_at:
            raise InvalidInput("验证码已过期，请重新获取", code="sms_code_expired")
        attempts = await _reserve_attempt(session, latest.id, settings.sms_max_attempts)
        code_id, code_hash = latest.id, latest.code_hash
    # The attempt is committed above: a wrong code below leaves it counted.
    if attempts is None:
        raise InvalidInput("验证码错误次数过多，请重新获取", code="sms_code_exhausted")
    candidate = keyed_digest(_code_key(services), code.strip())
    if not constant_time_equals(candidate, code_hash):
        attempts_left = settings.sms_max_attempts - attempts
        if attempts_left <= 0:
            raise InvalidInput("验证码错误次数过多，请重新获取", code="sms_code_exhausted")
        raise InvalidInput(
            f"验证码不正确，还可以再试{attempts_left}次", code="sms_code_wrong", attempts_left=attempts_left
        )
    return code_id


async def consume_code(session: AsyncSession, services: PlatformServices, code_id: int) -> None:
    """Spend a code that ``verify_code`` accepted, in the caller's transaction (once only)."""
    consumed = await session.execute(
        update(SmsCode)
        .where(SmsCode.id == code_id, SmsCode.consumed_at.is_(None))
        .values(consumed_at=services.clock.now())
        .returning(SmsCode.id)
    )
    if consumed.scalar_one_or_none() is None:
        # Used by a concurrent request a moment ago.
        raise InvalidInput("请先获取验证码", code="sms_code_missing")


async def _latest_code(session: AsyncSession, phone: str, purpose: SmsPurpose) -> SmsCode | None:
    """The newest code of (phone, purpose) not known to have failed: a failed send leaves the
    previous code the one the user holds, and a pending one may have reached the phone (the
    provider answered, then the process died before recording it)."""
    return await session.scalar(
        select(SmsCode)
        .where(
            SmsCode.phone == phone,
            SmsCode.purpose == purpose.value,
            SmsCode.delivery != Delivery.FAILED.value,
        )
        .order_by(SmsCode.id.desc())
        .limit(1)
        .execution_options(populate_existing=True)
    )


async def _reserve_attempt(session: AsyncSession, code_id: int, max_attempts: int) -> int | None:
    """Count one try; ``None`` when the tries are used up."""
    result = await session.execute(
        update(SmsCode)
        .where(SmsCode.id == code_id, SmsCode.attempts < max_attempts)
        .values(attempts=SmsCode.attempts + 1)
        .returning(SmsCode.attempts)
    )
    return result.scalar_one_or_none()


def _wait_text(seconds: int) -> str:
    if seconds >= 3600:
        return f"{(seconds + 3599) // 3600}小时"
    return f"{max(1, (seconds + 59) // 60)}分钟"


async def _window(
    session: AsyncSession, since: datetime, *conditions: ColumnElement[bool]
) -> tuple[int, datetime | None]:
    """How many codes since ``since`` match, and when the oldest of them was sent."""
    row = (
        await session.execute(
            select(func.count(SmsCode.id), func.min(SmsCode.created_at)).where(
                SmsCode.created_at > since, *conditions
            )
        )
    ).one()
    return int(row[0] or 0), row[1]


async def check_abuse_limits(
    session: AsyncSession, services: PlatformServices, origin: SendOrigin, now: datetime
) -> str | None:
    """The limits besides the per-phone ones; returns the nonce of the captcha this send spends.

    A global hourly budget, a daily limit per chat identity, an hourly limit per client IP, and
    after ``sms_captcha_after`` sends in an hour from one web-chat session or address, a solved
    image captcha for each further send. Each refusal says when to try again.
    """
    from seal_platform import captcha

    settings = services.settings
    hour, day = timedelta(hours=1), timedelta(days=1)

    def refused(code: str, text: str, window: timedelta, oldest: datetime | None) -> RateLimited:
        wait = max(1, int(((oldest or now) + window - now).total_seconds() + 0.999))
        return RateLimited(
            f"{text}，请{_wait_text(wait)}后再试",
            code=code,
            retry_after=wait,
            wait_minutes=max(1, (wait + 59) // 60),
        )

    count, oldest = await _window(session, now - hour)
    if count >= settings.sms_hourly_budget:
        raise refused("sms_budget_exhausted", "验证码发送繁忙", hour, oldest)
    if origin.identity:
        count, oldest = await _window(session, now - day, SmsCode.identity == origin.identity)
        if count >= settings.sms_daily_limit_per_identity:
            raise refused("sms_identity_limit", "今天获取验证码的次数已达上限", day, oldest)
    if origin.client_ip:
        count, oldest = await _window(session, now - hour, SmsCode.client_ip == origin.client_ip)
        if count >= settings.sms_hourly_limit_per_ip:
            raise refused("sms_ip_limit", "当前网络获取验证码过于频繁", hour, oldest)
    if not origin.is_web:
        return None
    same_origin = [SmsCode.client_ip == origin.client_ip] if origin.client_ip else []
    if origin.identity:
        same_origin.append(SmsCode.identity == origin.identity)
    count, _oldest = await _window(session, now - hour, or_(*same_origin))
    if count < settings.sms_captcha_after:
        return None
    if not origin.captcha_token or not origin.captcha_answer:
        raise captcha.CaptchaRequired("请先输入图形验证码", code="sms_captcha_required")
    secret = settings.secret_key.get_secret_value()
    nonce = captcha.verify(secret, now, origin.captcha_token, origin.captcha_answer)
    if await session.scalar(select(SmsCode.id).where(SmsCode.captcha_nonce == nonce)) is not None:
        raise captcha.CaptchaWrong("图形验证码已使用过，请重新获取", code="sms_captcha_wrong")
    return nonce
