"""Staff take a conversation over, the bot keeps quiet, and hand-back resumes the exact step."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
import sqlalchemy as sa

from bot.engine.context import Ctx
from bot.engine.messages import Origin, Reply
from bot.engine.state import Owner
from bot.engine.store import OutboxStatus, QueuedReply
from bot.engine.tables import outbox
from bot.support.models import SupportTicket, TicketReason, TicketState
from bot.support.service import AlreadyClaimed, NotYourConversation
from tests.engine.transcript import ID_NUMBER, ZH, fill_form
from tests.support.conftest import DeskRig

WAITING = "已为您转接人工客服，请稍候，客服接入后会在这里回复您。"
STAFF_JOINED = "人工客服已接入，请直接在这里留言。"
HANDED_BACK = "客服已将您转回智能助手，我们从您刚才的步骤继续。"


async def _status(rig: DeskRig, outbox_id: int) -> str:
    async with rig.chat.store.engine.connect() as conn:  # type: ignore[attr-defined]
        return str((await conn.execute(sa.select(outbox.c.status).where(outbox.c.id == outbox_id))).scalar())


async def _tickets(rig: DeskRig) -> list[SupportTicket]:
    async with rig.desk.sessions() as session:
        return list(await session.scalars(sa.select(SupportTicket).order_by(SupportTicket.id)))


async def test_asking_for_a_human_queues_the_conversation_and_tells_the_expected_wait(rig: DeskRig) -> None:
    await fill_form(rig.chat, ZH, until="age")

    replies = await rig.chat.say("人工")

    assert replies == [
        WAITING,
        "您目前排在第 1 位，预计约 5 分钟内客服会回复您。在等待时发送“取消”可回到自助办理。",
    ]
    assert await rig.owner() == Owner.WAITING
    [ticket] = await _tickets(rig)
    assert (ticket.state, ticket.reason, ticket.flow, ticket.step) == (
        TicketState.WAITING,
        TicketReason.ASKED,
        "form",
        "age",
    )
    # A second user behind the first hears a longer wait.
    await rig.chat.say("你好", user="u2", lang="zh-CN")
    assert (await rig.chat.say("人工", user="u2"))[-1].startswith("您目前排在第 2 位，预计约 10 分钟")


async def test_the_bot_stays_silent_while_staff_own_the_conversation_even_for_earlier_queued_messages(
    rig: DeskRig,
) -> None:
    await fill_form(rig.chat, ZH, until="age")
    key = rig.key()

    # Before the takeover: a reminder scheduled for an hour later, and a status push that is
    # queued but not yet delivered when staff step in.
    async def queue_reminder(ctx: Ctx) -> None:
        later = rig.chat.clock.now() + timedelta(hours=1)
        ctx.replies.append(QueuedReply(Reply.text_reply("提醒：您的申请还未完成。"), Origin.BOT, later))

    async def queue_status(ctx: Ctx) -> None:
        ctx.say_text("订单状态已更新。")

    [reminder] = await rig.chat.engine.push(key, queue_reminder)
    [status] = await rig.chat.engine.push(key, queue_status)
    await rig.desk.take_over(key, "alice")
    sent_before = len(rig.chat.sender.sent)

    rig.chat.clock.advance(timedelta(hours=2))
    await rig.settle()
    assert await rig.chat.say("30") == []  # the bot does not answer the form step either
    assert await rig.chat.say("帮助") == []
    rig.chat.clock.advance(timedelta(hours=2))
    await rig.settle()

    texts = [m.reply.text for m in rig.chat.sender.sent[sent_before:]]
    assert texts == [STAFF_JOINED]
    assert await _status(rig, reminder.outbox_id) == OutboxStatus.HELD
    assert await _status(rig, status.outbox_id) == OutboxStatus.HELD

    # Staff are not silenced.
    await rig.desk.reply_text(key, "alice", "您好，我是客服小王。")
    await rig.settle()
    assert rig.chat.sender.sent[-1].reply.text == "您好，我是客服小王。"
    assert rig.chat.sender.sent[-1].origin is Origin.STAFF


async def test_hand_back_resumes_the_exact_step_with_the_answers_kept(rig: DeskRig) -> None:
    await fill_form(rig.chat, ZH, until="id_number")
    key = rig.key()
    await rig.chat.say("人工")
    await rig.desk.claim(key, "alice")
    await rig.settle()
    assert await rig.chat.say("我的营业执照被驳回了") == []  # to staff, not an answer to the form
    await rig.desk.reply_text(key, "alice", "请重新上传加盖公章的扫描件。")

    await rig.desk.hand_back(key, "alice")
    await rig.settle()

    assert rig.chat.transcript()[-2:] == [HANDED_BACK, ZH.step(5, 7, ZH.ask_id)]
    assert await rig.owner() == Owner.BOT
    row = await rig.chat.store.get(key)
    assert row is not None
    answers = row.state["run"]["answers"]
    assert answers["name"] == "张三"
    assert answers["kind"] == "company"
    assert answers["company"] == "某某科技有限公司"
    assert answers["age"] == 30
    # ... and the bot takes the next answer at that step.
    assert await rig.chat.say(ID_NUMBER) == [ZH.step(6, 7, ZH.ask_scan)]
    [ticket] = await _tickets(rig)
    assert (ticket.state, ticket.resolution) == (TicketState.RESOLVED, "handed_back")


async def test_two_agents_cannot_claim_the_same_conversation(rig: DeskRig) -> None:
    await fill_form(rig.chat, ZH, until="age")
    await rig.chat.say("人工")
    key = rig.key()

    results = await asyncio.gather(
        rig.desk.claim(key, "alice"), rig.desk.claim(key, "bob"), return_exceptions=True
    )

    winners = [r for r in results if isinstance(r, SupportTicket)]
    losers = [r for r in results if isinstance(r, AlreadyClaimed)]
    assert len(winners) == 1
    assert len(losers) == 1
    winner = winners[0].agent
    assert winner in {"alice", "bob"}
    assert losers[0].agent == winner
    assert await rig.owner() == Owner.staff(winner or "")
    assert [a for a in await rig.audit_actions() if a[1] == "claim"] == [(winner, "claim")]
    # A later claim by the loser is refused too, and says who holds it.
    loser = "bob" if winner == "alice" else "alice"
    with pytest.raises(AlreadyClaimed) as refused:
        await rig.desk.claim(key, loser)
    assert refused.value.agent == winner


async def test_only_the_claiming_agent_may_reply_release_or_hand_back(rig: DeskRig) -> None:
    await fill_form(rig.chat, ZH, until="age")
    await rig.chat.say("人工")
    key = rig.key()
    await rig.desk.claim(key, "alice")

    with pytest.raises(NotYourConversation):
        await rig.desk.reply_text(key, "bob", "我来回答")
    with pytest.raises(NotYourConversation):
        await rig.desk.release(key, "bob")
    with pytest.raises(NotYourConversation):
        await rig.desk.hand_back(key, "bob")
    assert await rig.owner() == Owner.staff("alice")
    # An admin may force it.
    await rig.desk.hand_back(key, "carol", force=True)
    assert await rig.owner() == Owner.BOT


async def test_release_puts_the_conversation_back_in_the_queue_for_another_agent(rig: DeskRig) -> None:
    await fill_form(rig.chat, ZH, until="age")
    await rig.chat.say("人工")
    key = rig.key()
    await rig.desk.claim(key, "alice")

    await rig.desk.release(key, "alice")
    await rig.settle()

    assert await rig.owner() == Owner.WAITING
    assert rig.chat.transcript()[-1] == "正在为您转接其他客服，请稍候。"
    await rig.desk.claim(key, "bob")
    assert await rig.owner() == Owner.staff("bob")


async def test_assign_gives_a_queued_conversation_to_a_named_agent(rig: DeskRig) -> None:
    await fill_form(rig.chat, ZH, until="age")
    await rig.chat.say("人工")
    key = rig.key()

    await rig.desk.assign(key, "bob", by="alice")

    assert await rig.owner() == Owner.staff("bob")
    with pytest.raises(NotYourConversation):
        await rig.desk.assign(key, "alice", by="alice")  # bob holds it now
    await rig.desk.assign(key, "carol", by="bob")
    assert await rig.owner() == Owner.staff("carol")


async def test_a_queued_user_leaves_the_queue_with_cancel_and_the_bot_resumes(rig: DeskRig) -> None:
    await fill_form(rig.chat, ZH, until="age")
    await rig.chat.say("人工")

    replies = await rig.chat.say("取消")

    assert replies == ["已取消人工客服排队，智能助手将继续为您服务。", ZH.step(4, 7, ZH.ask_age)]
    assert await rig.owner() == Owner.BOT
    [ticket] = await _tickets(rig)
    assert (ticket.state, ticket.resolution) == (TicketState.RESOLVED, "user_left")


async def test_a_user_who_failed_a_step_repeatedly_is_queued_with_that_reason(rig: DeskRig) -> None:
    await fill_form(rig.chat, ZH, until="age")
    for _ in range(3):
        await rig.chat.say("三十")

    await rig.chat.tap("转人工")

    [ticket] = await _tickets(rig)
    assert ticket.reason == TicketReason.FAILURES


async def test_every_ownership_change_and_staff_message_is_audited(rig: DeskRig) -> None:
    await fill_form(rig.chat, ZH, until="age")
    key = rig.key()
    await rig.chat.say("人工")
    await rig.desk.claim(key, "alice")
    await rig.desk.reply_text(key, "alice", "您好，身份证号 11010519491231002X 已核对。")
    await rig.desk.release(key, "alice")
    await rig.desk.assign(key, "bob", by="carol", force=True)
    await rig.desk.reply_text(key, "bob", "好的")
    await rig.desk.resolve(key, "bob")

    assert await rig.audit_actions() == [
        ("user", "handoff"),
        ("alice", "claim"),
        ("alice", "staff_message"),
        ("alice", "release"),
        ("carol", "assign"),
        ("bob", "staff_message"),
        ("bob", "resolved"),
    ]
    entries = await rig.desk.audit_of(key)
    assert entries[1].before == {"owner": Owner.WAITING}
    assert entries[1].after == {"owner": Owner.staff("alice")}
    # Identifiers in staff messages are masked in the log.
    assert "11010519491231002X" not in entries[2].after["text"]
    assert entries[-1].after == {"owner": Owner.BOT}
