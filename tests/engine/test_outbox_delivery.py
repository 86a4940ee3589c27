"""Outbound delivery: retried with growing backoff, stopped on a permanent failure, in order."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import sqlalchemy as sa

from bot.engine.messages import ConversationKey, Inbound, OutboundMessage
from bot.engine.outbox import OutboxDispatcher
from bot.engine.store import OutboxStatus
from bot.engine.tables import outbox
from bot.testing import ChatHarness, RecordingSender
from tests.engine.transcript import Lang, fill_form


async def _rows(chat: ChatHarness) -> list[sa.Row[tuple[int, str, int, str | None]]]:
    async with chat.store.engine.connect() as conn:  # type: ignore[attr-defined]
        result = await conn.execute(
            sa.select(outbox.c.id, outbox.c.status, outbox.c.attempts, outbox.c.last_error).order_by(
                outbox.c.id
            )
        )
        return list(result.all())


async def test_a_failed_delivery_is_retried_with_growing_backoff(chat: ChatHarness, lang: Lang) -> None:
    await fill_form(chat, lang, until="age")
    chat.sender.failures_to_inject = 2
    assert await chat.say("30") == []  # the first attempt failed: nothing reached the user yet
    row = (await _rows(chat))[-1]
    assert (row.status, row.attempts, row.last_error) == (OutboxStatus.PENDING, 1, "injected failure")

    await chat.dispatcher.drain()
    assert (await _rows(chat))[-1].attempts == 1  # not due before its backoff (about 1 s)
    chat.clock.advance(timedelta(seconds=1.3))
    await chat.dispatcher.drain()
    assert (await _rows(chat))[-1].attempts == 2  # second attempt, failed again
    chat.clock.advance(timedelta(seconds=1.3))
    await chat.dispatcher.drain()
    assert (await _rows(chat))[-1].attempts == 2  # the backoff doubled (about 2 s)
    chat.clock.advance(timedelta(seconds=1.3))
    await chat.dispatcher.drain()

    last = chat.sender.sent[-1]
    assert last.reply.text == lang.step(5, 7, lang.ask_id)
    assert last.attempt == 3
    assert (await _rows(chat))[-1].status == OutboxStatus.SENT


async def test_a_non_retryable_failure_stops_delivery(chat: ChatHarness, lang: Lang) -> None:
    await fill_form(chat, lang, until="age")
    chat.sender.failures_to_inject = 1
    chat.sender.retryable = False
    sent_before = len(chat.sender.sent)
    await chat.say("30")
    chat.clock.advance(timedelta(hours=1))
    await chat.dispatcher.drain()
    assert len(chat.sender.sent) == sent_before
    row = (await _rows(chat))[-1]
    assert (row.status, row.attempts) == (OutboxStatus.FAILED, 1)
    assert chat.dispatcher.failed == 1
    # The conversation itself went on: the next answer is delivered normally.
    assert await chat.say("11010519491231002X") == [lang.step(6, 7, lang.ask_scan)]


async def test_delivery_gives_up_after_the_maximum_attempts(chat: ChatHarness, lang: Lang) -> None:
    await fill_form(chat, lang, until="age")
    chat.dispatcher.max_attempts = 3
    chat.sender.failures_to_inject = 10
    await chat.say("30")
    for _ in range(5):
        chat.clock.advance(timedelta(minutes=10))
        await chat.dispatcher.drain()
    row = (await _rows(chat))[-1]
    assert (row.status, row.attempts) == (OutboxStatus.FAILED, 3)


async def test_a_later_message_waits_for_an_earlier_one_being_retried(chat: ChatHarness, lang: Lang) -> None:
    await fill_form(chat, lang, until="age")
    chat.sender.failures_to_inject = 1
    replies = await chat.say("abc")  # two messages: the refusal, then the question again
    assert replies == []
    rows = await _rows(chat)
    assert [r.status for r in rows[-2:]] == [OutboxStatus.PENDING, OutboxStatus.PENDING]
    chat.clock.advance(timedelta(seconds=5))
    await chat.dispatcher.drain()
    refusal = "年龄需要是数字，例如 30。" if lang.code == "zh-CN" else "Age must be a number, for example 30."
    assert [m.reply.text for m in chat.sender.sent[-2:]] == [refusal, lang.step(4, 7, lang.ask_age)]


async def test_a_restarted_process_sends_at_once_what_a_killed_one_was_sending(chat: ChatHarness) -> None:
    from bot.engine.messages import Inbound
    from bot.engine.outbox import OutboxDispatcher
    from bot.testing import RecordingSender

    replies = await chat.engine.handle(Inbound.command(chat.key("u1"), "m1", "start"))
    assert replies
    # the process that committed them claimed them for sending, then was killed (kill -9)
    claimed = await chat.store.claim_due(chat.clock.now(), limit=10, lease=timedelta(seconds=60))
    assert [m.outbox_id for m in claimed] == [replies[0].outbox_id]
    # the next process on this database, well inside the dead one's lease
    sender = RecordingSender()
    restarted = OutboxDispatcher(chat.store, {"test": sender}, chat.clock, reclaim_at_start=True)
    await restarted.start()
    await restarted.stop()
    await restarted.drain()
    assert [m.outbox_id for m in sender.sent] == [m.outbox_id for m in replies]
    assert {row.status for row in await _rows(chat)} == {OutboxStatus.SENT}


async def test_a_sender_that_never_waits_is_run_in_the_dispatchers_task_beside_those_that_do(
    chat: ChatHarness,
) -> None:
    class Sender(RecordingSender):
        async def send(self, message: OutboundMessage) -> None:
            tasks.append((self.channel, asyncio.current_task()))
            await super().send(message)

    class AtOnce(Sender):
        waits = False

    tasks: list[tuple[str, asyncio.Task[object] | None]] = []
    at_once, networked = AtOnce(channel="web"), Sender(channel="tg")
    for channel in ("web", "tg"):
        for user in ("u1", "u2"):
            await chat.engine.handle(
                Inbound.text_message(ConversationKey(channel, "main", user), "m1", "/menu")
            )
    dispatcher = OutboxDispatcher(chat.store, {"web": at_once, "tg": networked}, chat.clock)
    draining = asyncio.current_task()
    await dispatcher.drain()
    assert len(at_once.sent) == len(networked.sent) > 0
    assert {t for c, t in tasks if c == "web"} == {draining}  # awaited in place, no task each
    assert draining not in {t for c, t in tasks if c == "tg"}  # overlapping, a task each
    statuses = {row.status for row in await _rows(chat)}
    assert statuses == {OutboxStatus.SENT}
