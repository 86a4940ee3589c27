"""Timeouts: escalation after N minutes, office hours, idle hand-back after M minutes."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import sqlalchemy as sa

from bot.engine.state import Owner
from bot.support.hours import OfficeHours
from bot.support.models import SupportTicket, TicketState
from bot.support.settings import SupportSettings
from tests.engine.transcript import ZH, fill_form
from tests.support.conftest import DeskRig, desk_settings, make_rig

STILL_WAITING = (
    "抱歉让您久等了，客服仍在忙碌中。您目前排在第 1 位，预计还需约 5 分钟。发送“取消”可回到自助办理。"
)
IDLE = "由于长时间没有新消息，本次人工服务已结束，智能助手将继续为您办理。如需人工帮助，请再次发送“人工”。"
SHANGHAI_WEEKDAYS = {
    "office_days": frozenset({1, 2, 3, 4, 5}),
    "office_opens": time(9, 0),
    "office_closes": time(18, 0),
}


async def _queued(rig: DeskRig) -> None:
    await fill_form(rig.chat, ZH, until="age")
    await rig.chat.say("人工")


async def test_an_unanswered_user_is_escalated_after_n_minutes_and_told_the_wait_once(rig: DeskRig) -> None:
    await _queued(rig)
    rig.chat.clock.advance(timedelta(minutes=9))
    assert (await rig.desk.check_timeouts(rig.chat.clock.now())).escalated == []

    rig.chat.clock.advance(timedelta(minutes=2))
    report = await rig.desk.check_timeouts(rig.chat.clock.now())
    await rig.settle()

    assert report.escalated == [str(rig.key())]
    assert rig.chat.transcript()[-1] == STILL_WAITING
    # The same wait is escalated once, however often the timer runs.
    rig.chat.clock.advance(timedelta(minutes=15))
    assert (await rig.desk.check_timeouts(rig.chat.clock.now())).escalated == []
    [ticket] = await rig.desk.open_tickets()
    assert ticket.escalated_at is not None
    assert ("system", "escalate") in await rig.audit_actions()


async def test_a_claimed_conversation_is_escalated_when_the_agent_leaves_a_message_unanswered(
    rig: DeskRig,
) -> None:
    await _queued(rig)
    key = rig.key()
    await rig.desk.claim(key, "alice")
    await rig.desk.reply_text(key, "alice", "您好")
    rig.chat.clock.advance(timedelta(minutes=1))
    await rig.chat.say("还在吗？")
    rig.chat.clock.advance(timedelta(minutes=5))
    assert (await rig.desk.check_timeouts()).escalated == []

    rig.chat.clock.advance(timedelta(minutes=6))
    report = await rig.desk.check_timeouts()

    assert report.escalated == [str(key)]
    await rig.settle()
    assert rig.chat.transcript()[-1] == "客服已看到您的消息，会尽快回复您。"
    # A staff reply answers the wait: nothing more to escalate.
    await rig.desk.reply_text(key, "alice", "在的")
    rig.chat.clock.advance(timedelta(minutes=20))
    assert (await rig.desk.check_timeouts()).escalated == []


async def test_outside_office_hours_the_user_is_told_when_staff_are_back(db_url: str) -> None:
    rig = await make_rig(db_url, desk_settings(**SHANGHAI_WEEKDAYS))
    try:
        # 2026-11-28 02:00 UTC is Saturday 10:00 in Shanghai: staff are back Monday 09:00.
        await _queued(rig)
        assert rig.chat.transcript()[-1] == (
            "现在是非工作时间，人工客服将于 11-30 09:00（Asia/Shanghai）上班后回复您。"
            "您可以先留言；发送“取消”可回到自助办理。"
        )
        # The escalation at night repeats when they are back, not a queue estimate.
        rig.chat.clock.advance(timedelta(minutes=11))
        await rig.desk.check_timeouts()
        await rig.settle()
        assert rig.chat.transcript()[-1].startswith("现在是非工作时间，人工客服将于 11-30 09:00")
    finally:
        await rig.chat.close()


def test_office_hours_know_when_staff_are_in_and_when_they_return() -> None:
    settings = SupportSettings(**SHANGHAI_WEEKDAYS)  # type: ignore[arg-type]
    hours = OfficeHours(
        zone=settings.zone,
        opens=settings.office_opens,
        closes=settings.office_closes,
        days=settings.office_days,
    )
    friday_evening = datetime(2026, 11, 27, 10, 30, tzinfo=UTC)  # 18:30 in Shanghai
    monday_morning = datetime(2026, 11, 30, 1, 30, tzinfo=UTC)  # 09:30 in Shanghai
    monday_early = datetime(2026, 11, 29, 23, 0, tzinfo=UTC)  # 07:00 Monday in Shanghai

    assert not hours.is_open(friday_evening)
    assert hours.is_open(monday_morning)
    assert hours.next_opening(friday_evening).isoformat() == "2026-11-30T09:00:00+08:00"
    assert hours.next_opening(monday_early).isoformat() == "2026-11-30T09:00:00+08:00"
    assert hours.next_opening(monday_morning) == monday_morning


async def test_a_conversation_idle_with_staff_goes_back_to_the_bot_after_m_minutes(rig: DeskRig) -> None:
    await _queued(rig)
    key = rig.key()
    await rig.desk.claim(key, "alice")
    await rig.desk.reply_text(key, "alice", "请问还有什么问题？")
    rig.chat.clock.advance(timedelta(minutes=20))
    await rig.chat.say("我想想")
    await rig.desk.reply_text(key, "alice", "好的")
    rig.chat.clock.advance(timedelta(minutes=29))
    assert (await rig.desk.check_timeouts()).handed_back == []  # activity 29 minutes ago

    rig.chat.clock.advance(timedelta(minutes=2))
    report = await rig.desk.check_timeouts()
    await rig.settle()

    assert report.handed_back == [str(key)]
    assert await rig.owner() == Owner.BOT
    assert rig.chat.transcript()[-2:] == [IDLE, ZH.step(4, 7, ZH.ask_age)]
    assert ("system", "idle") in await rig.audit_actions()
    async with rig.desk.sessions() as session:
        ticket = await session.scalar(sa.select(SupportTicket))
    assert ticket is not None
    assert (ticket.state, ticket.resolution) == (TicketState.RESOLVED, "idle")
    # The user is the bot's again: it answers the form.
    assert await rig.chat.say("30") == [ZH.step(5, 7, ZH.ask_id)]
