"""Two scheduler workers on one PostgreSQL database: every reminder is sent exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import pytest

from bot.engine.locks import ConversationLocks, PostgresAdvisoryLock
from bot.testing import ManualClock
from scheduler.deliveries import Status
from tests.contract.postgres import fresh_schema, schema_engine
from tests.scheduler.conftest import Bot, Platform, make_bot
from tests.scheduler.seals import SealPlan

pytestmark = pytest.mark.postgres

DAY = timedelta(days=1)


async def worker(platform: Platform, clock: ManualClock, schema: str) -> Bot:
    db = schema_engine(schema)
    return await make_bot(
        platform, clock, db=db, schema=False, locks=ConversationLocks(PostgresAdvisoryLock(db))
    )


async def test_two_workers_racing_send_each_reminder_once(platform: Platform, clock: ManualClock) -> None:
    async with fresh_schema() as schema:
        first = await worker(platform, clock, schema)
        second = await worker(platform, clock, schema)
        try:
            accounts = [await platform.add_account() for _ in range(12)]
            # spread over the thresholds: some due now, some later in the run
            await platform.add_seals(
                [
                    SealPlan(account, (3 + n * 6) * DAY + timedelta(hours=1))
                    for n, account in enumerate(accounts)
                ]
            )
            users = [f"user{n}" for n in range(12)]
            for user, account in zip(users, accounts, strict=True):
                await first.bind(user, account)
            for _ in range(75):
                await asyncio.gather(first.run(), second.run(), first.run(), second.run())
                clock.advance(DAY)
            received = [t for u in users for t in first.reminders_to(u) + second.reminders_to(u)]
            rows = await first.deliveries.recent(limit=1000)
            sent = [r for r in rows if r.status == Status.SENT]
            assert len(received) == len(sent)
            assert len({(r.seal_id, r.threshold) for r in sent}) == len(sent)
            # Each seal gets the most urgent threshold already due at the start, then every later
            # one. Seals expire in 3 + 6n days (n = 0..11), thresholds 60, 30, 7, 1 and the day
            # after (-1): every seal passes 7, 1 and -1; the 11 expiring in 9 days or more also
            # 30; the 7 expiring in 33 days or more also 60 (the first seal's 7 is its due one).
            assert Counter(r.threshold for r in sent) == {-1: 12, 1: 12, 7: 12, 30: 11, 60: 7}
            both_sent = {m.outbox_id for m in first.sent} & {m.outbox_id for m in second.sent}
            assert both_sent == set()
        finally:
            await first.chat.close()
            await second.chat.close()
