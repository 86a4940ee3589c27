"""Accounts endpoints: SMS codes, registration, login and logout, the account, real-name."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from platform_client.base import SubAPI
from platform_client.models import Account, PlatformModel, Registration, Session, SmsCodeSent, SmsPurpose


class CaptchaOut(PlatformModel):
    token: str
    png_base64: str


@dataclass(frozen=True)
class Captcha:
    token: str
    png: bytes


class AccountsAPI(SubAPI):
    async def send_sms_code(
        self,
        phone: str,
        purpose: SmsPurpose,
        *,
        token: str | None = None,
        identity: str | None = None,
        client_ip: str | None = None,
        captcha_token: str | None = None,
        captcha_answer: str | None = None,
    ) -> SmsCodeSent:
        """``token`` is needed for account-bound purposes (``cancel_seal``). ``identity`` (the
        chat user, e.g. ``wechat:<openid>``) and ``client_ip`` (a web chat visitor's address) are
        what the platform's abuse limits count by; a web origin may be asked for a captcha."""
        body: dict[str, str] = {"phone": phone, "purpose": purpose}
        extras = {
            "identity": identity,
            "client_ip": client_ip,
            "captcha_token": captcha_token,
            "captcha_answer": captcha_answer,
        }
        body.update({name: value for name, value in extras.items() if value})
        data = await self._request("POST", "/v1/sms-codes", json=body, account_token=token)
        return self._parse(SmsCodeSent, data)

    async def captcha(self) -> Captcha:
        """An image captcha to show before another SMS code (``sms_captcha_required``)."""
        data = await self._request("POST", "/v1/captchas")
        parsed = self._parse(CaptchaOut, data)
        return Captcha(token=parsed.token, png=base64.b64decode(parsed.png_base64))

    async def register(self, phone: str, sms_code: str, password: str) -> Registration:
        data = await self._request(
            "POST", "/v1/accounts", json={"phone": phone, "sms_code": sms_code, "password": password}
        )
        return self._parse(Registration, data)

    async def login_password(self, phone: str, password: str) -> Session:
        data = await self._request("POST", "/v1/sessions", json={"phone": phone, "password": password})
        return self._parse(Session, data)

    async def login_sms(self, phone: str, sms_code: str) -> Session:
        data = await self._request("POST", "/v1/sessions", json={"phone": phone, "sms_code": sms_code})
        return self._parse(Session, data)

    async def reset_password(self, phone: str, sms_code: str, password: str) -> Session:
        """A new password after an SMS code of purpose ``reset_password``; earlier sessions end."""
        data = await self._request(
            "POST", "/v1/password-resets", json={"phone": phone, "sms_code": sms_code, "password": password}
        )
        return self._parse(Session, data)

    async def logout(self, token: str) -> None:
        await self._request("DELETE", "/v1/sessions/current", account_token=token)

    async def logout_everywhere(self, token: str) -> None:
        """End every session of the account, this one included."""
        await self._request("DELETE", "/v1/sessions", account_token=token)

    async def me(self, token: str) -> Account:
        return self._parse(Account, await self._request("GET", "/v1/me", account_token=token))

    async def verify_realname(self, token: str, *, name: str, id_number: str) -> Account:
        data = await self._request(
            "POST", "/v1/me/realname", json={"name": name, "id_number": id_number}, account_token=token
        )
        return self._parse(Account, data)

    async def export_my_data(self, token: str, sms_code: str) -> bytes:
        """A ZIP of everything the platform holds about the account (code purpose ``export_data``)."""
        response = await self._transport.call_raw(
            "POST", "/v1/me/export", json={"sms_code": sms_code}, account_token=token
        )
        return response.content

    async def deletion_preview(self, token: str) -> DeletionPreview:
        """What stands in the way of deleting the account, and what would be kept."""
        return self._parse(
            DeletionPreview, await self._request("GET", "/v1/me/deletion", account_token=token)
        )

    async def delete_account(self, token: str, sms_code: str) -> AccountDeleted:
        """Delete the account (code purpose ``delete_account``); ``Conflict`` with code
        ``account_deletion_blocked`` while a seal is live or an order is open."""
        data = await self._request(
            "POST", "/v1/me/deletion", json={"sms_code": sms_code}, account_token=token
        )
        return self._parse(AccountDeleted, data)


class DeletionBlocker(PlatformModel):
    kind: str
    id: str
    type: str
    status: str


class DeletionPreview(PlatformModel):
    blockers: list[DeletionBlocker]
    kept_orders: int
    kept_invoices: int
    kept_certificates: int
    documents: int


class AccountDeleted(PlatformModel):
    documents: int
    orders_kept: int
