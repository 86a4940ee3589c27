"""Each threshold is sent once, in the most recent chat, with a button that starts renewal."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from scheduler.deliveries import Status
from tests.scheduler.conftest import Bot, Platform
from tests.scheduler.seals import SealPlan

SHANGHAI = ZoneInfo("Asia/Shanghai")

DAY = timedelta(days=1)


async def test_each_threshold_is_sent_once_as_the_clock_moves_to_expiry_and_past_it(
    platform: Platform, bot: Bot
) -> None:
    account = await platform.add_account()
    seal = await platform.add_seal(account, expires_in=70 * DAY)
    await bot.bind("u1", account)

    texts: list[str] = []
    for _ in range(80):  # one pass a day, the same hour each day, from 70 days before to 10 after
        await bot.run()
        await bot.run()  # a second pass the same day changes nothing
        bot.chat.clock.advance(DAY)
    texts = bot.reminders_to("u1")

    assert len(texts) == 5
    assert "还剩 60 天" in texts[0]
    assert "续期已开放" in texts[0]
    assert "还剩 30 天" in texts[1]
    assert "还剩 7 天" in texts[2]
    assert "还剩 1 天" in texts[3]
    assert "已于" in texts[4]
    assert "到期" in texts[4]
    rows = await bot.deliveries.recent()
    assert sorted(r.threshold for r in rows) == [-1, 1, 7, 30, 60]
    assert {r.status for r in rows} == {Status.SENT}
    assert {r.seal_id for r in rows} == {seal}


async def test_the_reminder_names_the_seal_and_date_and_its_button_starts_renewal_of_that_seal(
    platform: Platform, bot: Bot
) -> None:
    account = await platform.add_account()
    seal, _ = await platform.add_seals(
        [
            SealPlan(account, 30 * DAY + timedelta(hours=1), name="蓝海贸易有限公司"),
            SealPlan(account, 300 * DAY, name="另一家有限公司"),
        ]
    )
    await bot.bind("u1", account)
    await bot.run()

    [message] = [m for m in bot.sent if m.key.user_id == "u1" and "立即续期" in str(m.reply.options)]
    expiry = (bot.chat.clock.now() + 30 * DAY + timedelta(hours=1)).date().isoformat()
    assert "企业印章「蓝海贸易有限公司」" in message.reply.text
    assert expiry in message.reply.text
    assert message.reply.options[0].token == f"@go:renew:{seal}"
    renew = message.reply.options[0]
    assert renew.label == "立即续期"
    # The real renewal flow opens on that seal (the account's only one would be picked anyway,
    # so a second seal proves the button chose it).
    answer = await bot.chat.tap(renew.label, token=renew.token)
    local_expiry = (bot.chat.clock.now() + 30 * DAY + timedelta(hours=1)).astimezone(SHANGHAI).date()
    assert answer[0] == f"这枚印章 {local_expiry.isoformat()} 到期，现在可以续期。"
    assert answer[1] == "（第 1/2 步） 请选择续期年限："


async def test_a_user_with_two_chat_identities_gets_it_once_in_the_most_recent(
    platform: Platform, bot: Bot
) -> None:
    account = await platform.add_account()
    await platform.add_seal(account, expires_in=7 * DAY - timedelta(hours=1))
    await bot.bind("old-identity", account)
    bot.chat.clock.advance(timedelta(minutes=5))
    await bot.bind("new-identity", account)
    await bot.run()
    assert len(bot.reminders_to("new-identity")) == 1
    assert bot.reminders_to("old-identity") == []


async def test_english_speakers_get_english_reminders(platform: Platform, bot: Bot) -> None:
    account = await platform.add_account()
    await platform.add_seal(account, expires_in=60 * DAY - timedelta(hours=2), kind="personal", name="李四")
    await bot.bind("u1", account, lang="en")
    await bot.run()
    [text] = bot.reminders_to("u1")
    assert 'Your legal representative seal "李四" expires on' in text
    assert "60 days left" in text
    assert "Renewal is open" in text
