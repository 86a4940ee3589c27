"""The signed link a WeChat reminder opens: the renewal of that seal, for a limited time only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI

from bot.testing import ManualClock
from scheduler.renew_links import RenewLinks, renew_link_router

NOW = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)


async def test_a_good_link_opens_the_renewal_of_its_seal_and_a_forged_or_old_one_does_not() -> None:
    clock = ManualClock(NOW)
    links = RenewLinks("link-secret", "https://bot.example.com", ttl=timedelta(hours=72))
    app = FastAPI()
    app.include_router(renew_link_router(links, clock.now))
    url = links.url("seal-123", clock.now())
    token = url.removeprefix("https://bot.example.com/r/renew/")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bot") as http:
        good = await http.get(f"/r/renew/{token}")
        assert (good.status_code, good.headers["location"]) == (303, "/chat?start=renew-seal-123")
        forged = await http.get(f"/r/renew/{token.replace('seal-123', 'seal-999')}")
        assert forged.status_code == 410
        assert "请在聊天中发送「续期」办理" in forged.text
        other_key = RenewLinks("another-secret", "https://bot.example.com").token("seal-123", clock.now())
        assert (await http.get(f"/r/renew/{other_key}")).status_code == 410
        clock.advance(timedelta(hours=72, seconds=1))
        assert (await http.get(f"/r/renew/{token}")).status_code == 410
