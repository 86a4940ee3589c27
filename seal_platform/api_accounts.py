"""REST endpoints of accounts: SMS codes, registration, login sessions, the caller's account.

Request models only check shapes; the meaning of values (phone, ID number, password policy) is
checked by the service functions so that every refusal carries one of the platform's codes.
"""

from __future__ import annotations

import base64
from datetime import datetime

from fastapi import Response, status
from pydantic import BaseModel, Field

from seal_platform import accounts, captcha
from seal_platform.accounts import Account, IssuedSession
from seal_platform.auth import AccountDep, AccountTokenDep, ServicesDep, service_router
from seal_platform.errors import InvalidInput, NotAuthenticated
from seal_platform.sms import ACCOUNT_BOUND_PURPOSES, SendOrigin, SmsPurpose, deliver_code

router = service_router(prefix="/v1", tags=["accounts"])


class SmsCodeRequest(BaseModel):
    phone: str = Field(max_length=32, examples=["13800138000"])
    purpose: SmsPurpose
    # Who asks, as the bot reports it (the abuse limits count by these; see ``sms.SendOrigin``).
    identity: str | None = Field(
        default=None, max_length=128, examples=["wechat:oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"]
    )
    client_ip: str | None = Field(default=None, max_length=64)
    captcha_token: str | None = Field(default=None, max_length=128)
    captcha_answer: str | None = Field(default=None, max_length=16)


class CaptchaOut(BaseModel):
    """An image captcha: show ``png_base64``, send the answer back with ``token``."""

    token: str
    png_base64: str


class SmsCodeSent(BaseModel):
    phone: str
    purpose: SmsPurpose
    expires_at: datetime
    resend_after_seconds: int


class RegisterRequest(BaseModel):
    phone: str = Field(max_length=32)
    sms_code: str = Field(max_length=16)
    password: str = Field(max_length=256)


class LoginRequest(BaseModel):
    """Either ``password`` or ``sms_code`` (obtained with purpose ``login``), not both."""

    phone: str = Field(max_length=32)
    password: str | None = Field(default=None, max_length=256)
    sms_code: str | None = Field(default=None, max_length=16)


class PasswordResetRequest(BaseModel):
    phone: str = Field(max_length=32)
    sms_code: str = Field(max_length=16)
    password: str = Field(max_length=256)


class RealnameRequest(BaseModel):
    name: str = Field(max_length=64)
    id_number: str = Field(max_length=32)


class SessionOut(BaseModel):
    account_id: str
    token: str
    expires_at: datetime

    @classmethod
    def of(cls, issued: IssuedSession) -> SessionOut:
        return cls(account_id=issued.account_id, token=issued.token, expires_at=issued.expires_at)


class AccountOut(BaseModel):
    id: str
    phone: str
    created_at: datetime
    realname_status: accounts.RealnameStatus
    real_name: str | None
    id_number_masked: str | None
    realname_verified_at: datetime | None

    @classmethod
    def of(cls, account: Account) -> AccountOut:
        return cls(
            id=account.id,
            phone=account.phone,
            created_at=account.created_at,
            realname_status=accounts.RealnameStatus(account.realname_status),
            real_name=account.real_name,
            id_number_masked=account.id_number_masked,
            realname_verified_at=account.realname_verified_at,
        )


class RegistrationOut(BaseModel):
    account: AccountOut
    session: SessionOut


@router.post("/captchas", status_code=status.HTTP_201_CREATED, response_model=CaptchaOut)
async def new_captcha(services: ServicesDep) -> CaptchaOut:
    """An image captcha for the web chat, asked for after a few SMS sends (``sms_captcha_required``)."""
    issued = await captcha.issue(services.settings.secret_key.get_secret_value(), services.clock.now())
    return CaptchaOut(token=issued.token, png_base64=base64.b64encode(issued.png).decode())


@router.post("/sms-codes", status_code=status.HTTP_201_CREATED, response_model=SmsCodeSent)
async def send_sms_code(body: SmsCodeRequest, services: ServicesDep, token: AccountTokenDep) -> SmsCodeSent:
    """Send a verification code. Account-bound purposes (``cancel_seal``) need the account token."""
    account: Account | None = None
    async with services.db.session() as session:
        if body.purpose in ACCOUNT_BOUND_PURPOSES:
            if not token:
                raise NotAuthenticated("请先登录", code="account_token_missing")
            account = await accounts.account_for_token(session, services, token)
        origin = SendOrigin(
            identity=body.identity,
            client_ip=body.client_ip,
            captcha_token=body.captcha_token,
            captcha_answer=body.captcha_answer,
        )
        reserved = await accounts.request_sms_code(
            session, services, body.phone, body.purpose, account=account, origin=origin
        )
    # Committed and released: the gateway may take seconds, and no connection waits for it.
    sent = await deliver_code(services, reserved)
    return SmsCodeSent(
        phone=sent.phone,
        purpose=sent.purpose,
        expires_at=sent.expires_at,
        resend_after_seconds=sent.resend_after_seconds,
    )


@router.post("/accounts", status_code=status.HTTP_201_CREATED, response_model=RegistrationOut)
async def register(body: RegisterRequest, services: ServicesDep) -> RegistrationOut:
    """Register with a code of purpose ``register``; the answer includes a logged-in session."""
    account, issued = await accounts.register(services, body.phone, body.sms_code, body.password)
    return RegistrationOut(account=AccountOut.of(account), session=SessionOut.of(issued))


@router.post("/sessions", status_code=status.HTTP_201_CREATED, response_model=SessionOut)
async def login(body: LoginRequest, services: ServicesDep) -> SessionOut:
    password, sms_code = body.password, body.sms_code
    if password is not None and sms_code is None:
        issued = await accounts.login_password(services, body.phone, password)
    elif sms_code is not None and password is None:
        issued = await accounts.login_sms(services, body.phone, sms_code)
    else:
        raise InvalidInput("请提供密码或短信验证码其中之一", code="login_method_required")
    return SessionOut.of(issued)


@router.post("/password-resets", status_code=status.HTTP_201_CREATED, response_model=SessionOut)
async def reset_password(body: PasswordResetRequest, services: ServicesDep) -> SessionOut:
    """A new password with a code of purpose ``reset_password``; earlier sessions end."""
    issued = await accounts.reset_password(services, body.phone, body.sms_code, body.password)
    return SessionOut.of(issued)


@router.delete("/sessions/current", status_code=status.HTTP_204_NO_CONTENT)
async def logout(account: AccountDep, services: ServicesDep, token: AccountTokenDep) -> Response:
    if token:  # always present: AccountDep required it
        async with services.db.session() as session:
            await accounts.logout(session, token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/sessions", status_code=status.HTTP_204_NO_CONTENT)
async def logout_everywhere(account: AccountDep, services: ServicesDep) -> Response:
    """End every session of the caller's account (log out everywhere)."""
    async with services.db.session() as session:
        await accounts.logout_everywhere(session, account.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me", response_model=AccountOut)
async def me(account: AccountDep) -> AccountOut:
    return AccountOut.of(account)


@router.post("/me/realname", response_model=AccountOut)
async def verify_realname(body: RealnameRequest, account: AccountDep, services: ServicesDep) -> AccountOut:
    """Real-name verification; once verified, the name and ID number can no longer change (409)."""
    async with services.db.session() as session:
        updated = await accounts.verify_realname(session, services, account.id, body.name, body.id_number)
    return AccountOut.of(updated)
