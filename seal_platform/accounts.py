"""Applicant accounts: registration, login sessions, lock-out and real-name status.

Service functions take ``(session, services, ...)``; the caller owns the transaction. Refusals
are ``PlatformError`` subclasses with stable codes. The exceptions are ``register``,
``login_password`` and ``login_sms``: they take only ``services`` and run their own short
transactions, because an attempt counter must commit even when the login fails, and a password
hash (tens of milliseconds, in the hasher's thread pool) must not run while a pooled connection
is held. A request therefore never holds two connections at once, nor one during hashing.

Password login answers ``wrong_credentials`` for an unknown phone as for a wrong password (same
time, same throttle), so a password guesser learns nothing from it; five wrong passwords lock the
phone for 15 minutes. The SMS-code endpoints do say whether a phone is registered, because the
user must learn whether to register or to log in; they are rate limited per phone.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import Boolean, ForeignKey, Integer, String, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from dbkit.types import UtcDateTime
from seal_platform import events, sms
from seal_platform.db import Base
from seal_platform.errors import Conflict, NotAuthenticated, NotFound, RateLimited
from seal_platform.security import new_token, token_digest
from seal_platform.validation import check_password_policy, mask_id_number, mask_mobile, normalise_mobile

if TYPE_CHECKING:
    from seal_platform.services import PlatformServices

MAX_PASSWORD_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
ID_NUMBER_CONTEXT = "account.id_number"


class RealnameStatus(StrEnum):
    NONE = "none"
    VERIFIED = "verified"


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    phone: Mapped[str] = mapped_column(String(11), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    realname_status: Mapped[str] = mapped_column(String(16), default=RealnameStatus.NONE.value)
    real_name: Mapped[str | None] = mapped_column(String(64), default=None)
    id_number_enc: Mapped[str | None] = mapped_column(String(255), default=None)
    id_number_masked: Mapped[str | None] = mapped_column(String(32), default=None)
    realname_verified_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)

    @property
    def is_realname_verified(self) -> bool:
        return self.realname_status == RealnameStatus.VERIFIED.value


class AccountToken(Base):
    __tablename__ = "account_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class LoginThrottle(Base):
    """Password failures per phone number (not per account: unknown numbers are throttled too)."""

    __tablename__ = "login_throttles"

    phone: Mapped[str] = mapped_column(String(11), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)


@dataclass(frozen=True)
class IssuedSession:
    account_id: str
    token: str
    expires_at: datetime


async def request_sms_code(
    session: AsyncSession,
    services: PlatformServices,
    phone: str,
    purpose: sms.SmsPurpose,
    *,
    account: Account | None = None,
    origin: sms.SendOrigin | None = None,
) -> sms.ReservedCode:
    """Reserve a code after checking that the purpose makes sense for this phone; the caller
    commits, releases its session and then sends it with ``sms.deliver_code``.

    Registration codes go only to new numbers and login codes only to registered ones (an SMS
    costs money and annoys the owner of a mistyped number). Account-bound purposes such as
    ``cancel_seal`` need the logged-in ``account`` and always go to its own phone.
    """
    if purpose in sms.ACCOUNT_BOUND_PURPOSES:
        if account is None:
            raise NotAuthenticated("请先登录", code="account_token_missing")
        if normalise_mobile(phone) != account.phone:
            raise Conflict("验证码只能发送到本账号的手机号", code="phone_not_account_phone")
        return await sms.reserve_code(session, services, account.phone, purpose, origin)
    phone = normalise_mobile(phone)
    existing = await _account_by_phone(session, phone)
    if purpose is sms.SmsPurpose.REGISTER and existing is not None:
        raise Conflict("该手机号已注册，请直接登录", code="phone_registered")
    if purpose in (sms.SmsPurpose.LOGIN, sms.SmsPurpose.RESET_PASSWORD) and existing is None:
        raise NotFound("该手机号尚未注册", code="account_not_found")
    return await sms.reserve_code(session, services, phone, purpose, origin)


async def register(
    services: PlatformServices, phone: str, sms_code: str, password: str
) -> tuple[Account, IssuedSession]:
    """Create the account and its first session (the caller holds no session: see the module)."""
    phone = normalise_mobile(phone)
    check_password_policy(password)
    async with services.db.session() as session:
        if await _account_by_phone(session, phone) is not None:
            raise Conflict("该手机号已注册，请直接登录", code="phone_registered")
    code_id = await sms.verify_code(services, phone=phone, purpose=sms.SmsPurpose.REGISTER, code=sms_code)
    password_hash = await services.password_hasher.hash_async(password)
    async with services.db.session() as session:
        await sms.consume_code(session, services, code_id)
        account = Account(
            id=str(uuid.uuid4()),
            phone=phone,
            password_hash=password_hash,
            created_at=services.clock.now(),
            realname_status=RealnameStatus.NONE.value,
        )
        session.add(account)
        try:
            await session.flush()
        except IntegrityError as exc:
            raise Conflict("该手机号已注册，请直接登录", code="phone_registered") from exc
        events.publish(session, account.id, "account.registered", {"phone_masked": mask_mobile(phone)})
        issued = await _issue_session(session, services, account.id)
    return account, issued


async def login_password(services: PlatformServices, phone: str, password: str) -> IssuedSession:
    """Log in with the password (the caller holds no session: see the module)."""
    phone = normalise_mobile(phone)
    await _reserve_password_attempt(services, phone)
    async with services.db.session() as session:
        account = await _account_by_phone(session, phone)
    hasher = services.password_hasher
    valid = await hasher.verify_async(account.password_hash if account else None, password)
    if account is None or not valid:
        failures = await _record_password_failure(services, phone)
        attempts_left = max(0, MAX_PASSWORD_FAILURES - failures)
        if attempts_left == 0:
            raise RateLimited(
                "密码错误次数过多，请15分钟后再试或使用验证码登录",
                code="login_locked",
                retry_after=int(LOCKOUT.total_seconds()),
            )
        raise NotAuthenticated(
            f"手机号或密码不正确，还可以再试{attempts_left}次",
            code="wrong_credentials",
            attempts_left=attempts_left,
        )
    new_hash = await hasher.hash_async(password) if hasher.needs_rehash(account.password_hash) else None
    async with services.db.session() as session:
        await session.execute(update(LoginThrottle).where(LoginThrottle.phone == phone).values(failures=0))
        if new_hash is not None:
            await session.execute(
                update(Account).where(Account.id == account.id).values(password_hash=new_hash)
            )
        return await _issue_session(session, services, account.id)


async def login_sms(services: PlatformServices, phone: str, sms_code: str) -> IssuedSession:
    """Log in with a code of purpose ``login`` (the caller holds no session: see the module)."""
    phone = normalise_mobile(phone)
    code_id = await sms.verify_code(services, phone=phone, purpose=sms.SmsPurpose.LOGIN, code=sms_code)
    async with services.db.session() as session:
        await sms.consume_code(session, services, code_id)
        account = await _account_by_phone(session, phone)
        if account is None:
            raise NotFound("该手机号尚未注册", code="account_not_found")
        # Proving the phone also proves the owner: lift a password lock-out.
        await session.execute(
            update(LoginThrottle).where(LoginThrottle.phone == phone).values(failures=0, locked_until=None)
        )
        return await _issue_session(session, services, account.id)


async def reset_password(
    services: PlatformServices, phone: str, sms_code: str, password: str
) -> IssuedSession:
    """A new password after proving the phone with a ``reset_password`` code: every earlier
    session of the account ends, the lock-out is lifted, and a new session is issued (the
    caller holds no session: see the module)."""
    phone = normalise_mobile(phone)
    check_password_policy(password)
    async with services.db.session() as session:
        if await _account_by_phone(session, phone) is None:
            raise NotFound("该手机号尚未注册", code="account_not_found")
    code_id = await sms.verify_code(
        services, phone=phone, purpose=sms.SmsPurpose.RESET_PASSWORD, code=sms_code
    )
    password_hash = await services.password_hasher.hash_async(password)
    async with services.db.session() as session:
        await sms.consume_code(session, services, code_id)
        account = await _account_by_phone(session, phone)
        if account is None:
            raise NotFound("该手机号尚未注册", code="account_not_found")
        account.password_hash = password_hash
        await logout_everywhere(session, account.id)
        await session.execute(
            update(LoginThrottle).where(LoginThrottle.phone == phone).values(failures=0, locked_until=None)
        )
        events.publish(session, account.id, "account.password_reset", {"phone_masked": mask_mobile(phone)})
        return await _issue_session(session, services, account.id)


async def logout(session: AsyncSession, token: str) -> None:
    await session.execute(
        update(AccountToken).where(AccountToken.token_hash == token_digest(token)).values(revoked=True)
    )


async def logout_everywhere(session: AsyncSession, account_id: str) -> None:
    """End every session of the account (every chat and device logged in with it)."""
    await session.execute(
        update(AccountToken).where(AccountToken.account_id == account_id).values(revoked=True)
    )


async def account_for_token(session: AsyncSession, services: PlatformServices, token: str) -> Account:
    row = await session.get(AccountToken, token_digest(token))
    if row is None or row.revoked:
        raise NotAuthenticated("登录已失效，请重新登录", code="account_token_invalid")
    if services.clock.now() >= row.expires_at:
        raise NotAuthenticated("登录已过期，请重新登录", code="account_token_expired")
    account = await session.get(Account, row.account_id)
    if account is None:
        raise NotAuthenticated("登录已失效，请重新登录", code="account_token_invalid")
    return account


async def get_account(session: AsyncSession, account_id: str) -> Account:
    account = await session.get(Account, account_id, populate_existing=True)
    if account is None:
        raise NotFound("账号不存在", code="account_not_found")
    return account


async def verify_realname(
    session: AsyncSession, services: PlatformServices, account_id: str, name: str, id_number: str
) -> Account:
    account = await get_account(session, account_id)
    if account.is_realname_verified:
        raise Conflict("该账号已完成实名认证，不能更改", code="realname_already_verified")
    identity = await services.realname_verifier.verify(name, id_number, today=services.clock.now().date())
    masked = mask_id_number(identity.id_number)
    account.realname_status = RealnameStatus.VERIFIED.value
    account.real_name = identity.name
    account.id_number_enc = services.field_cipher.encrypt(identity.id_number, context=ID_NUMBER_CONTEXT)
    account.id_number_masked = masked
    account.realname_verified_at = services.clock.now()
    events.publish(
        session,
        account.id,
        "account.realname_verified",
        {"real_name": identity.name, "id_number_masked": masked},
    )
    return account


def account_id_number(services: PlatformServices, account: Account) -> str | None:
    """The decrypted ID number of a verified account (for seal applications that reuse it)."""
    if account.id_number_enc is None:
        return None
    return services.field_cipher.decrypt(account.id_number_enc, context=ID_NUMBER_CONTEXT)


async def _account_by_phone(session: AsyncSession, phone: str) -> Account | None:
    return await session.scalar(select(Account).where(Account.phone == phone))


async def _issue_session(session: AsyncSession, services: PlatformServices, account_id: str) -> IssuedSession:
    token = new_token()
    now = services.clock.now()
    expires_at = now + timedelta(seconds=services.settings.account_token_ttl_seconds)
    session.add(
        AccountToken(
            token_hash=token_digest(token),
            account_id=account_id,
            created_at=now,
            expires_at=expires_at,
            revoked=False,
        )
    )
    await session.flush()
    return IssuedSession(account_id=account_id, token=token, expires_at=expires_at)


async def _reserve_password_attempt(services: PlatformServices, phone: str) -> None:
    """Count the attempt before checking it, in its own transaction (see ``sms`` for why)."""
    now = services.clock.now()
    retry_after: int | None = None
    async with services.db.session() as counter:
        if await counter.get(LoginThrottle, phone) is None:
            try:
                async with counter.begin_nested():
                    counter.add(LoginThrottle(phone=phone, failures=0, locked_until=None))
            except IntegrityError:
                pass  # a concurrent attempt created the row
        await counter.execute(
            update(LoginThrottle)
            .where(LoginThrottle.phone == phone, LoginThrottle.locked_until <= now)
            .values(failures=0, locked_until=None)
        )
        reserved = await counter.execute(
            update(LoginThrottle)
            .where(
                LoginThrottle.phone == phone,
                LoginThrottle.locked_until.is_(None),
                LoginThrottle.failures < MAX_PASSWORD_FAILURES,
            )
            .values(failures=LoginThrottle.failures + 1)
            .returning(LoginThrottle.failures)
        )
        if reserved.scalar_one_or_none() is None:
            locked_until = await counter.scalar(
                select(LoginThrottle.locked_until).where(LoginThrottle.phone == phone)
            )
            if locked_until is None:
                # The remaining tries are in flight right now; lock as if they all failed.
                locked_until = now + LOCKOUT
                await counter.execute(
                    update(LoginThrottle)
                    .where(LoginThrottle.phone == phone)
                    .values(locked_until=locked_until)
                )
            retry_after = max(1, int((locked_until - now).total_seconds() + 0.999))
    if retry_after is not None:
        raise RateLimited(
            "密码错误次数过多，请稍后再试或使用验证码登录", code="login_locked", retry_after=retry_after
        )


async def _record_password_failure(services: PlatformServices, phone: str) -> int:
    """The reserved attempt stays counted; lock the phone when it was the last one allowed."""
    async with services.db.session() as counter:
        failures = (
            await counter.scalar(select(LoginThrottle.failures).where(LoginThrottle.phone == phone)) or 0
        )
        if failures >= MAX_PASSWORD_FAILURES:
            await counter.execute(
                update(LoginThrottle)
                .where(LoginThrottle.phone == phone, LoginThrottle.locked_until.is_(None))
                .values(locked_until=services.clock.now() + LOCKOUT)
            )
        return failures
