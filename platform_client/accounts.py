"""Accounts endpoints: SMS codes, registration, login and logout, the account, real-name."""

from __future__ import annotations

from platform_client.base import SubAPI
from platform_client.models import Account, Registration, Session, SmsCodeSent, SmsPurpose


class AccountsAPI(SubAPI):
    async def send_sms_code(
        self, phone: str, purpose: SmsPurpose, *, token: str | None = None
    ) -> SmsCodeSent:
        """``token`` is needed for account-bound purposes (``cancel_seal``)."""
        data = await self._request(
            "POST", "/v1/sms-codes", json={"phone": phone, "purpose": purpose}, account_token=token
        )
        return self._parse(SmsCodeSent, data)

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
