"""Staff login (``POST /v1/staff/sessions``): consoles outside the platform, such as the
support inbox of the bot, check staff credentials and roles here."""

from __future__ import annotations

from platform_client.base import SubAPI
from platform_client.models import PlatformModel


class StaffSession(PlatformModel):
    token: str
    username: str
    roles: list[str]


class StaffSessionsAPI(SubAPI):
    async def login(self, username: str, password: str, client_ip: str | None = None) -> StaffSession:
        """``NotAuthenticated`` (code ``staff_login_failed``) for a wrong name or password,
        ``RateLimited`` while the name is locked or the address must wait. ``client_ip`` is the
        address of the person signing in, which the platform throttles."""
        body = {"username": username, "password": password}
        if client_ip:
            body["client_ip"] = client_ip
        data = await self._request("POST", "/v1/staff/sessions", json=body)
        return self._parse(StaffSession, data)
