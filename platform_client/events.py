"""The platform's event feed (catch-up reads; the embedded bot is also woken in-process)."""

from __future__ import annotations

from platform_client.base import SubAPI
from platform_client.models import EventPage


class EventsAPI(SubAPI):
    async def fetch(self, after: int = 0, limit: int = 100) -> EventPage:
        """Events with an id greater than ``after``, oldest first; continue from ``next_after``."""
        data = await self._request("GET", "/v1/events", params={"after": after, "limit": limit})
        return self._parse(EventPage, data)
