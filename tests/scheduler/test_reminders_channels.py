"""Routes and failures: WeChat notices outside the window, consent, blocked bots, retries."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.engine.state import Owner
from bot.testing import ManualClock
from scheduler.deliveries import Status
from tests.scheduler.conftest import Bot, Platform, make_bot, scheduler_settings
from tests.scheduler.fakes import BlockedSender, FakeWeChatReach

DAY = timedelta(days=1)


@pytest.fixture
def wechat() -> FakeWeChatReach:
    return FakeWeChatReach()


@pytest.fixture
async def wbot(
    platform: Platform, clock: ManualClock, tmp_path: Path, wechat: FakeWeChatReach
) -> AsyncIterator[Bot]:
    settings = scheduler_settings(max_attempts=3, backoff_base_seconds=60)
    worker = await make_bot(
        platform,
        clock,
        db_url=f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
        settings=settings,
        proactive=[wechat],
    )
    yield worker
    await worker.chat.close()


async def only_status(bot: Bot) -> str:
    [delivery] = await bot.deliveries.recent()
    return delivery.status


async def test_outside_the_window_a_consenting_wechat_user_gets_a_notice_not_a_chat_message(
    platform: Platform, wbot: Bot, wechat: FakeWeChatReach
) -> None:
    account = await platform.add_account()
    seal = await platform.add_seal(account, expires_in=7 * DAY - timedelta(hours=1), name="蓝海贸易有限公司")
    await wbot.bind("u1", account)
    wechat.consent.add("u1")
    await wbot.run()
    assert wbot.reminders_to("u1") == []
    [(key, notice)] = wechat.notices
    assert key.user_id == "u1"
    assert notice.start_payload == f"renew-{seal}"
    assert "蓝海贸易有限公司" in notice.text
    assert notice.title == "电子印章到期提醒"
    assert await only_status(wbot) == Status.SENT


async def test_inside_the_window_the_reminder_is_a_chat_message(
    platform: Platform, wbot: Bot, wechat: FakeWeChatReach
) -> None:
    account = await platform.add_account()
    await platform.add_seal(account, expires_in=7 * DAY - timedelta(hours=1))
    await wbot.bind("u1", account)
    wechat.in_window.add("u1")
    await wbot.run()
    assert len(wbot.reminders_to("u1")) == 1
    assert wechat.notices == []


async def test_no_consent_is_recorded_and_not_retried(
    platform: Platform, wbot: Bot, wechat: FakeWeChatReach
) -> None:
    account = await platform.add_account()
    await platform.add_seal(account, expires_in=7 * DAY - timedelta(hours=1))
    await wbot.bind("u1", account)
    await wbot.run()
    wechat.consent.add("u1")  # consent given later does not resurrect this reminder
    wbot.chat.clock.advance(timedelta(hours=2))
    await wbot.run()
    assert wechat.notices == []
    assert await only_status(wbot) == Status.NO_CONSENT


async def test_a_transient_notice_failure_is_retried_with_backoff_then_sent(
    platform: Platform, wbot: Bot, wechat: FakeWeChatReach
) -> None:
    account = await platform.add_account()
    await platform.add_seal(account, expires_in=7 * DAY - timedelta(hours=1))
    await wbot.bind("u1", account)
    wechat.consent.add("u1")
    wechat.transient_failures = 1
    await wbot.run()
    [delivery] = await wbot.deliveries.recent()
    assert delivery.status == Status.PLANNED
    assert delivery.attempts == 1
    assert delivery.next_attempt_at > wbot.chat.clock.now() + timedelta(seconds=40)
    await wbot.run()  # not yet due again
    assert wechat.notices == []
    wbot.chat.clock.advance(timedelta(minutes=2))
    await wbot.run()
    assert len(wechat.notices) == 1
    assert await only_status(wbot) == Status.SENT


async def test_transient_failures_give_up_after_the_configured_attempts(
    platform: Platform, wbot: Bot, wechat: FakeWeChatReach
) -> None:
    account = await platform.add_account()
    await platform.add_seal(account, expires_in=7 * DAY - timedelta(hours=1))
    await wbot.bind("u1", account)
    wechat.consent.add("u1")
    wechat.transient_failures = 10
    for _ in range(6):
        await wbot.run()
        wbot.chat.clock.advance(timedelta(hours=1))
    assert wechat.transient_failures == 7  # three attempts, then it stopped
    assert await only_status(wbot) == Status.FAILED


async def test_a_user_who_blocked_the_account_is_recorded_as_blocked(
    platform: Platform, wbot: Bot, wechat: FakeWeChatReach
) -> None:
    account = await platform.add_account()
    await platform.add_seal(account, expires_in=7 * DAY - timedelta(hours=1))
    await wbot.bind("u1", account)
    wechat.consent.add("u1")
    wechat.blocked.add("u1")
    await wbot.run()
    assert await only_status(wbot) == Status.BLOCKED


async def test_a_blocked_bot_reported_by_the_outbox_is_recorded_as_blocked(
    platform: Platform, bot: Bot
) -> None:
    account = await platform.add_account()
    await platform.add_seal(account, expires_in=7 * DAY - timedelta(hours=1))
    await bot.bind("u1", account)
    bot.chat.dispatcher.senders["test"] = BlockedSender()
    await bot.run()
    assert await only_status(bot) == Status.BLOCKED
    bot.chat.clock.advance(timedelta(hours=3))
    await bot.run()
    assert await only_status(bot) == Status.BLOCKED


async def test_a_transient_chat_failure_is_retried_by_the_outbox(platform: Platform, bot: Bot) -> None:
    account = await platform.add_account()
    await platform.add_seal(account, expires_in=7 * DAY - timedelta(hours=1))
    await bot.bind("u1", account)
    bot.chat.sender.failures_to_inject = 1
    await bot.run()
    assert bot.reminders_to("u1") == []
    bot.chat.clock.advance(timedelta(seconds=5))
    await bot.run()
    assert len(bot.reminders_to("u1")) == 1
    assert await only_status(bot) == Status.SENT


async def test_while_staff_own_the_conversation_the_reminder_waits(platform: Platform, bot: Bot) -> None:
    account = await platform.add_account()
    await platform.add_seal(account, expires_in=7 * DAY - timedelta(hours=1))
    key = await bot.bind("u1", account)
    await bot.chat.engine.set_owner(key, Owner.staff("alice"))
    await bot.run()
    assert bot.reminders_to("u1") == []
    assert await only_status(bot) == Status.PLANNED
    await bot.chat.engine.set_owner(key, Owner.BOT)
    bot.chat.clock.advance(timedelta(minutes=31))
    await bot.run()
    assert len(bot.reminders_to("u1")) == 1
