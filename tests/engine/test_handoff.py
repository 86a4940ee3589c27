"""Hand-off to a human: the bot stays silent while staff own the conversation."""

from __future__ import annotations

import sqlalchemy as sa

from bot.engine.context import Ctx
from bot.engine.flow import FlowRegistry
from bot.engine.messages import Inbound, Origin, Reply
from bot.engine.runtime import EngineHooks
from bot.engine.state import Owner
from bot.engine.store import OutboxStatus
from bot.engine.tables import outbox
from bot.testing import ChatHarness
from tests.engine.conftest import LOCALES
from tests.engine.flows_for_tests import FORM
from tests.engine.transcript import Lang, fill_form


async def _statuses(chat: ChatHarness) -> dict[int, str]:
    async with chat.store.engine.connect() as conn:  # type: ignore[attr-defined]
        return {row.id: row.status for row in await conn.execute(sa.select(outbox.c.id, outbox.c.status))}


async def test_asking_for_a_human_sets_the_owner_and_the_bot_stays_silent(db_url: str, lang: Lang) -> None:
    handed_off: list[str] = []
    for_staff: list[str] = []

    async def on_handoff(ctx: Ctx) -> None:
        handed_off.append(str(ctx.key))

    async def on_message_for_staff(ctx: Ctx) -> None:
        assert ctx.inbound is not None
        for_staff.append(ctx.inbound.text)

    hooks = EngineHooks(on_handoff=on_handoff, on_message_for_staff=on_message_for_staff)
    chat = await ChatHarness.create(
        flows=FlowRegistry([FORM]), db_url=db_url, catalog_dirs=[LOCALES], hooks=hooks
    )
    try:
        await fill_form(chat, lang, until="age")
        waiting = (
            "已为您转接人工客服，请稍候，客服接入后会在这里回复您。"
            if lang.code == "zh-CN"
            else "You have been put through to support staff. Please wait; they will reply here."
        )
        assert await chat.say(lang.human) == [waiting]
        assert await chat.store.owner_of(chat.key("u1")) == Owner.WAITING
        assert handed_off == [str(chat.key("u1"))]

        # While waiting for and while talking to staff, the bot says nothing at all.
        assert await chat.say("30") == []
        await chat.engine.set_owner(chat.key("u1"), Owner.staff("alice"), notice="support.staff_joined")
        await chat.dispatcher.drain()
        assert chat.transcript()[-1] == (
            "人工客服已接入，请直接在这里留言。"
            if lang.code == "zh-CN"
            else "A support agent has joined. Please write here."
        )
        assert await chat.say(lang.help) == []
        assert await chat.say(lang.cancel) == []
        assert for_staff == ["30", lang.help, lang.cancel]
        await chat.engine.staff_say(chat.key("u1"), Reply.text_reply("您好，我是客服小王。"))
        await chat.dispatcher.drain()
        assert chat.transcript()[-1] == "您好，我是客服小王。"
        # The form is where it was: staff messages did not move it.
        row = await chat.store.get(chat.key("u1"))
        assert row is not None
        assert row.state["run"]["step"] == "age"

        # Staff hand back: the bot resumes with the question it was at.
        await chat.engine.set_owner(chat.key("u1"), Owner.BOT, notice="support.handed_back")
        await chat.dispatcher.drain()
        assert chat.transcript()[-1] == lang.step(4, 7, lang.ask_age)
        assert await chat.say("30") == [lang.step(5, 7, lang.ask_id)]
    finally:
        await chat.close()


async def test_a_bot_message_queued_before_takeover_is_held_not_sent(chat: ChatHarness, lang: Lang) -> None:
    await fill_form(chat, lang, until="age")
    key = chat.key("u1")
    # The bot answered, but the answer has not left yet when staff take the conversation.
    queued = await chat.engine.handle(Inbound.text_message(key, "m-late", "30", at=chat.clock.now()))
    assert [m.origin for m in queued] == [Origin.BOT]
    await chat.engine.set_owner(key, Owner.staff("alice"), notice="support.staff_joined")
    sent_before = len(chat.sender.sent)

    await chat.dispatcher.drain()

    sent = [m.reply.text for m in chat.sender.sent[sent_before:]]
    assert lang.step(5, 7, lang.ask_id) not in sent
    assert len(sent) == 1  # only the system notice that staff joined
    statuses = await _statuses(chat)
    assert statuses[queued[0].outbox_id] == OutboxStatus.HELD
    # Held messages never leave later either, not even after staff hand back.
    await chat.engine.set_owner(key, Owner.BOT)
    await chat.dispatcher.drain()
    assert lang.step(5, 7, lang.ask_id) in [m.reply.text for m in chat.sender.sent[sent_before:]]
    assert (await _statuses(chat))[queued[0].outbox_id] == OutboxStatus.HELD
