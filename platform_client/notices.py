"""The account's opt-in e-mailed status notices (``GET`` / ``PUT /v1/me/notices``).

Mounted on ``PlatformClient`` as ``notices = mount(NoticesAPI)``.
"""

from __future__ import annotations

from platform_client.base import SubAPI
from platform_client.models import PlatformModel


class NoticeSettings(PlatformModel):
    available: bool  # the platform can mail at all (it has SMTP settings)
    enabled: bool
    email: str
    language: str


class NoticesAPI(SubAPI):
    async def get(self, token: str) -> NoticeSettings:
        return self._parse(NoticeSettings, await self._request("GET", "/v1/me/notices", account_token=token))

    async def choose(
        self, token: str, *, enabled: bool, email: str | None = None, language: str | None = None
    ) -> NoticeSettings:
        """Opt in (``email`` needed unless given before) or out; ``language`` of the mails."""
        body: dict[str, object] = {"enabled": enabled}
        if email:
            body["email"] = email
        if language:
            body["language"] = language
        data = await self._request("PUT", "/v1/me/notices", json=body, account_token=token)
        return self._parse(NoticeSettings, data)
