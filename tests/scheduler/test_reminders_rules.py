"""Quiet hours, renewal and cancellation, late starts, opt-out: what is (not) sent, and when."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from scheduler.deliveries import Status
from tests.scheduler.conftest import Bot, Platform, make_bot, scheduler_settings

DAY = timedelta(days=1)


@pytest.fixture
def platform_overrides() -> dict[str, Any]:
    # Renewal opens 90 days before expiry here, so a seal can be renewed before its first
    # (60-day) reminder is due.
    return {"renewal_window_days": 90}


async def statuses(bot: Bot) -> dict[int, str]:
    return {d.threshold: d.status for d in await bot.deliveries.recent()}


async def test_nothing_is_sent_during_quiet_hours_and_the_reminder_goes_when_they_end(
    platform: Platform, bot: Bot
) -> None:
    account = await platform.add_account()
    await platform.add_seal(account, expires_in=40 * DAY)
    await bot.bind("u1", account)
    morning = bot.chat.clock.now()  # 10:00 in Shanghai
    # 22:30 in Shanghai, ten days later: the 30-day reminder is due, but it is night.
    bot.chat.clock.at = morning + 10 * DAY + timedelta(hours=12, minutes=30)
    await bot.run()
    assert bot.reminders_to("u1") == []
    assert await statuses(bot) == {30: Status.DEFERRED}

    bot.chat.clock.at = morning + 10 * DAY + timedelta(hours=22, minutes=59)  # 08:59 local
    await bot.run()
    assert bot.reminders_to("u1") == []

    bot.chat.clock.at = morning + 11 * DAY - timedelta(hours=1)  # 09:00 local
    await bot.run()
    assert len(bot.reminders_to("u1")) == 1
    assert await statuses(bot) == {30: Status.SENT}


async def test_a_seal_renewed_before_its_reminder_is_due_gets_none_and_starts_a_new_cycle(
    platform: Platform, bot: Bot
) -> None:
    account = await platform.add_account()
    seal = await platform.add_seal(account, expires_in=61 * DAY)
    await bot.bind("u1", account)
    await bot.run()
    await platform.renew(seal)  # valid one more year: the old cycle's reminders never come
    for _ in range(70):
        bot.chat.clock.advance(DAY)
        await bot.run()
    assert bot.reminders_to("u1") == []
    bot.chat.clock.advance(300 * DAY)  # the new cycle's 60-day reminder
    await bot.run()
    [text] = bot.reminders_to("u1")
    assert "还剩" in text


async def test_a_renewal_cancels_a_reminder_held_back_by_quiet_hours(platform: Platform, bot: Bot) -> None:
    account = await platform.add_account()
    seal = await platform.add_seal(account, expires_in=40 * DAY)
    await bot.bind("u1", account)
    morning = bot.chat.clock.now()
    bot.chat.clock.at = morning + 10 * DAY + timedelta(hours=12, minutes=30)  # night: held back
    await bot.run()
    await platform.renew(seal)
    bot.chat.clock.at = morning + 11 * DAY - timedelta(hours=1)  # 09:00
    await bot.run()
    assert bot.reminders_to("u1") == []
    assert await statuses(bot) == {30: Status.SUPERSEDED}


async def test_a_cancelled_seal_gets_no_reminder(platform: Platform, bot: Bot) -> None:
    account = await platform.add_account()
    seal = await platform.add_seal(account, expires_in=65 * DAY)
    await bot.bind("u1", account)
    await platform.cancel(seal)
    for _ in range(70):
        bot.chat.clock.advance(DAY)
        await bot.run()
    assert bot.reminders_to("u1") == []
    assert await statuses(bot) == {}


async def test_a_restart_after_a_missed_window_sends_only_the_most_urgent_reminder(
    platform: Platform, bot: Bot, tmp_path: object
) -> None:
    account = await platform.add_account()
    await platform.add_seal(account, expires_in=65 * DAY)
    await bot.bind("u1", account)
    await bot.run()  # 65 days before: nothing due yet
    assert bot.reminders_to("u1") == []
    await bot.chat.close()

    # The scheduler was down while the 60- and 30-day reminders fell due; it comes back with
    # 5 days left (a new process on the same database).
    bot.chat.clock.advance(60 * DAY)
    restarted = await make_bot(
        platform, bot.chat.clock, db_url=f"sqlite+aiosqlite:///{tmp_path}/bot.db", schema=False
    )
    try:
        await restarted.run()
        [text] = restarted.reminders_to("u1")
        assert "还剩 5 天" in text
        assert await statuses(restarted) == {7: Status.SENT}
        # and the less urgent ones are not sent later either
        restarted.chat.clock.advance(timedelta(hours=1))
        await restarted.run()
        assert len(restarted.reminders_to("u1")) == 1
    finally:
        await restarted.chat.close()
        bot.chat = restarted.chat  # the fixture closes it again: harmless


async def test_opting_out_by_chat_stops_reminders_and_opting_in_resumes_them(
    platform: Platform, bot: Bot
) -> None:
    account = await platform.add_account()
    await platform.add_seal(account, expires_in=61 * DAY)
    await bot.bind("u1", account)
    assert (await bot.chat.say("关闭提醒"))[0] == "已关闭印章到期提醒。需要时回复「开启提醒」即可恢复。"
    bot.chat.clock.advance(2 * DAY)
    await bot.run()
    assert bot.reminders_to("u1") == []
    assert await statuses(bot) == {60: Status.OPTED_OUT}

    assert (await bot.chat.say("reminders on"))[0].startswith("已开启印章到期提醒")
    bot.chat.clock.advance(30 * DAY)
    await bot.run()
    assert len(bot.reminders_to("u1")) == 1
    assert (await statuses(bot))[30] == Status.SENT


async def test_an_opt_out_on_one_identity_covers_the_accounts_other_identities(
    platform: Platform, bot: Bot
) -> None:
    account = await platform.add_account()
    await platform.add_seal(account, expires_in=7 * DAY - timedelta(hours=1))
    await bot.bind("telegram-ish", account)
    await bot.chat.say("关闭提醒", user="telegram-ish")
    bot.chat.clock.advance(timedelta(minutes=1))
    await bot.bind("wechat-ish", account)  # the most recent identity, which never opted out
    await bot.run()
    assert bot.reminders_to("wechat-ish") == []
    assert await statuses(bot) == {7: Status.OPTED_OUT}


async def test_an_account_without_a_chat_identity_is_recorded_not_retried(
    platform: Platform, bot: Bot
) -> None:
    account = await platform.add_account()
    await platform.add_seal(account, expires_in=7 * DAY - timedelta(hours=1))
    await bot.run()
    bot.chat.clock.advance(timedelta(hours=1))
    await bot.run()
    assert await statuses(bot) == {7: Status.UNDELIVERABLE}
    [delivery] = await bot.deliveries.recent()
    assert delivery.reason == (
        "chat: no chat identity bound; sms: no SMS sender configured; email: no e-mail sender configured"
    )


async def test_a_new_threshold_is_planned_on_the_next_pass_not_the_next_daily_sweep(
    platform: Platform, bot: Bot, tmp_path: Path
) -> None:
    account = await platform.add_account()
    await platform.add_seal(account, expires_in=12 * DAY)
    await bot.bind("u1", account)
    await bot.run()  # the full pass: the 30-day reminder (overdue) goes
    assert await statuses(bot) == {30: Status.SENT}
    bot.chat.clock.advance(timedelta(minutes=5))
    # The operator adds a 14-day reminder and restarts: the seal (12 days left) is due it now.
    reconfigured = await make_bot(
        platform,
        bot.chat.clock,
        db_url=f"sqlite+aiosqlite:///{tmp_path}/bot.db",
        schema=False,
        settings=scheduler_settings(thresholds_days=[60, 30, 14, 7, 1]),
    )
    try:
        report = await reconfigured.job.run_once()
        assert report.full_sweep
        assert await statuses(reconfigured) == {30: Status.SENT, 14: Status.QUEUED}
    finally:
        await reconfigured.chat.close()
