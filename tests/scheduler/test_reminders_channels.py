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


async def only_reason(bot: Bot) -> str:
    [delivery] = await bot.deliveries.recent()
    return delivery.reason or ""


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
    assert await only_status(wbot) == Status.UNDELIVERABLE
    assert await only_reason(wbot) == (
        "chat: test: outside the 48-hour window, no subscription consent, no template; "
        "sms: no SMS sender configured; email: no e-mail sender configured"
    )


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
    assert await only_status(wbot) == Status.UNDELIVERABLE
    assert (await only_reason(wbot)).startswith("chat: system busy (-1); sms: no SMS sender configured")


async def test_a_user_who_unfollowed_the_account_is_undeliverable_with_the_reason(
    platform: Platform, wbot: Bot, wechat: FakeWeChatReach
) -> None:
    account = await platform.add_account()
    await platform.add_seal(account, expires_in=7 * DAY - timedelta(hours=1))
    await wbot.bind("u1", account)
    wechat.consent.add("u1")
    wechat.blocked.add("u1")
    await wbot.run()
    assert await only_status(wbot) == Status.UNDELIVERABLE
    assert (await only_reason(wbot)).startswith("chat: wechat: the user unfollowed the account (43004); sms:")


async def test_a_blocked_bot_reported_by_the_outbox_goes_on_with_the_next_channel(
    platform: Platform, bot: Bot
) -> None:
    account = await platform.add_account()
    await platform.add_seal(account, expires_in=7 * DAY - timedelta(hours=1))
    await bot.bind("u1", account)
    bot.chat.dispatcher.senders["test"] = BlockedSender()
    await bot.run()
    [delivery] = await bot.deliveries.recent()
    assert (delivery.status, delivery.tried) == (Status.PLANNED, ("chat",))
    assert delivery.reason == ("chat: blocked (telegram refused: Forbidden: bot was blocked by the user)")
    bot.chat.clock.advance(timedelta(hours=3))
    await bot.run()
    assert await only_status(bot) == Status.UNDELIVERABLE
    assert await only_reason(bot) == (
        "chat: blocked (telegram refused: Forbidden: bot was blocked by the user); "
        "sms: no SMS sender configured; email: no e-mail sender configured"
    )


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
    assert await only_reason(bot) == "staff own the chat: planned again"
    await bot.chat.engine.set_owner(key, Owner.BOT)
    bot.chat.clock.advance(timedelta(minutes=31))
    await bot.run()
    assert len(bot.reminders_to("u1")) == 1


async def test_a_reminder_held_by_a_takeover_is_planned_again_not_failed(
    platform: Platform, bot: Bot
) -> None:
    account = await platform.add_account()
    await platform.add_seal(account, expires_in=7 * DAY - timedelta(hours=1))
    key = await bot.bind("u1", account)
    await bot.job.run_once()  # queued in the outbox while the bot owns the chat
    await bot.chat.engine.set_owner(key, Owner.staff("alice"))
    await bot.chat.dispatcher.drain()  # the outbox holds it: staff own the chat now
    await bot.job.sync_outbox(bot.chat.clock.now())
    [delivery] = await bot.deliveries.recent()
    assert (delivery.status, delivery.reason) == (Status.PLANNED, "held by a staff takeover: planned again")
    assert bot.reminders_to("u1") == []
    await bot.chat.engine.set_owner(key, Owner.BOT)
    bot.chat.clock.advance(timedelta(minutes=31))
    await bot.run()
    assert len(bot.reminders_to("u1")) == 1
    assert await only_status(bot) == Status.SENT
