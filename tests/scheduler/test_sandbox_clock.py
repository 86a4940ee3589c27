"""The sandbox clock of a non-production platform: staff set a seal's expiry in the console
(audited), the reminder job plans it on its next pass, and production refuses it."""

from __future__ import annotations

from datetime import timedelta

import httpx
import sqlalchemy as sa

from scheduler.deliveries import Status
from seal_platform.staff_actions import AuditEntry
from tests.console.support import STAFF_PASSWORD, ConsoleClient
from tests.fixtures.staff import add_staff
from tests.scheduler.conftest import Bot, Platform

DAY = timedelta(days=1)


async def staff_console(platform: Platform) -> ConsoleClient:
    await add_staff(platform.services, "sandbox.staff", ["support"], password=STAFF_PASSWORD)
    client = ConsoleClient(
        httpx.AsyncClient(transport=httpx.ASGITransport(app=platform.app), base_url="http://platform.test")
    )
    await client.login("sandbox.staff", STAFF_PASSWORD)
    return client


async def test_staff_set_a_seals_expiry_and_the_reminder_goes_on_the_next_pass(
    platform: Platform, bot: Bot
) -> None:
    account = await platform.add_account()
    seal = await platform.add_seal(account, expires_in=300 * DAY, name="沙盒测试有限公司")
    await bot.bind("u1", account)
    await bot.run()
    assert await bot.deliveries.recent() == []  # 300 days away: nothing due
    console = await staff_console(platform)
    try:
        page = await console.get("/sandbox")
        assert "沙盒测试有限公司" in page.text
        bad = await console.post(f"/sandbox/seals/{seal}/expiry", {"days": "七天"})
        assert bad.status_code == 422
        assert "到期天数须为整数" in bad.text
        done = await console.post(f"/sandbox/seals/{seal}/expiry", {"days": "7"})
        assert done.status_code == 303
        bot.chat.clock.advance(timedelta(minutes=1))
        await bot.run()  # an incremental pass: the changed seal is planned at once
        [delivery] = await bot.deliveries.recent()
        assert (delivery.threshold, delivery.status) == (7, Status.SENT)
        assert len(bot.reminders_to("u1")) == 1
        async with platform.services.db.session() as session:
            entries = list(
                await session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "sandbox.set_expiry"))
            )
        assert [(e.actor, e.object_id) for e in entries] == [("sandbox.staff", seal)]
    finally:
        await console.http.aclose()
