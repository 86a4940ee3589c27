"""External waits: timeouts by the clock, events that advance a flow, exactly once."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.engine.messages import ExternalEvent
from bot.testing import ChatHarness
from tests.engine.transcript import Lang, fill_form

PAID = ExternalEvent("evt-1001", "order.paid", {"order_id": "order-1"})


def _paid_text(lang: Lang) -> str:
    return "订单 order-1 已支付。" if lang.code == "zh-CN" else "Order order-1 is paid."


def _timed_out_text(lang: Lang) -> str:
    return "支付超时，订单已关闭。" if lang.code == "zh-CN" else "Payment timed out; the order is closed."


async def test_confirming_parks_the_flow_at_the_payment_wait(chat: ChatHarness, lang: Lang) -> None:
    replies = await fill_form(chat, lang, until="payment")
    assert replies == [lang.waiting]
    row = await chat.store.get(chat.key("u1"))
    assert row is not None
    assert row.flow == "form"
    # Writing meanwhile repeats what is awaited.
    assert await chat.say("在吗？") == [lang.waiting]


async def test_a_wait_times_out_once_even_if_the_timer_fires_twice(chat: ChatHarness, lang: Lang) -> None:
    await fill_form(chat, lang, until="payment")
    assert await chat.engine.fire_due_timeouts() == 0  # not due yet
    chat.clock.advance(timedelta(minutes=29))
    assert await chat.engine.fire_due_timeouts() == 0
    chat.clock.advance(timedelta(minutes=2))
    sent_before = len(chat.sender.sent)

    await chat.engine.fire_due_timeouts()
    await chat.engine.fire_due_timeouts()
    await chat.dispatcher.drain()

    texts = [m.reply.text for m in chat.sender.sent[sent_before:]]
    assert texts == [_timed_out_text(lang), lang.menu]
    row = await chat.store.get(chat.key("u1"))
    assert row is not None
    assert row.flow is None
    # A payment arriving after the timeout is not taken as paying the closed order.
    assert _paid_text(lang) not in await chat.event(PAID)


async def test_two_schedulers_firing_the_same_timeout_at_once_have_one_effect(
    chat: ChatHarness, lang: Lang
) -> None:
    await fill_form(chat, lang, until="payment")
    chat.clock.advance(timedelta(minutes=31))
    sent_before = len(chat.sender.sent)
    await asyncio.gather(chat.engine.fire_due_timeouts(), chat.engine.fire_due_timeouts())
    await chat.dispatcher.drain()
    assert [m.reply.text for m in chat.sender.sent[sent_before:]] == [_timed_out_text(lang), lang.menu]


async def test_an_external_event_advances_the_waiting_flow_and_a_duplicate_has_no_effect(
    chat: ChatHarness, lang: Lang
) -> None:
    await fill_form(chat, lang, until="payment")
    assert await chat.event(PAID) == [_paid_text(lang), lang.menu]
    assert await chat.event(PAID) == []  # redelivered by the platform: nothing happens
    row = await chat.store.get(chat.key("u1"))
    assert row is not None
    assert row.flow is None
    assert row.state["run"] is None
    # The wait is over: its deadline no longer fires.
    chat.clock.advance(timedelta(hours=1))
    assert await chat.engine.fire_due_timeouts() == 0


async def test_an_event_for_another_order_does_not_advance_the_wait(chat: ChatHarness, lang: Lang) -> None:
    await fill_form(chat, lang, until="payment")
    assert await chat.event(ExternalEvent("evt-9", "order.paid", {"order_id": "order-99"})) == []
    assert await chat.say("在吗") == [lang.waiting]


async def test_an_event_for_a_paused_flow_is_kept_until_the_user_comes_back(
    chat: ChatHarness, lang: Lang
) -> None:
    await fill_form(chat, lang, until="payment")
    await chat.say("菜单" if lang.code == "zh-CN" else "menu")  # puts the form aside
    row = await chat.store.get(chat.key("u1"))
    assert row is not None
    assert row.flow is None

    assert await chat.event(PAID) == []  # nothing is waiting in the foreground
    assert await chat.event(PAID) == []  # and a redelivery is not queued twice

    resumed = (
        "欢迎回来，继续办理「测试表单」。"
        if lang.code == "zh-CN"
        else 'Welcome back. Let\'s continue "Test form".'
    )
    assert await chat.tap(lang.form) == [resumed, _paid_text(lang), lang.menu]
    assert await chat.tap(lang.form) == [lang.step(1, 7, lang.ask_name)]  # a new run


async def test_a_paused_wait_still_times_out_when_the_user_comes_back_late(
    chat: ChatHarness, lang: Lang
) -> None:
    await fill_form(chat, lang, until="payment")
    await chat.say("菜单" if lang.code == "zh-CN" else "menu")
    chat.clock.advance(timedelta(hours=2))
    replies = await chat.tap(lang.form)
    # Coming back after the deadline: the wait is still there, and the next timer round ends it.
    assert replies[-1] == lang.waiting
    await chat.engine.fire_due_timeouts()
    await chat.dispatcher.drain()
    assert chat.transcript()[-2:] == [_timed_out_text(lang), lang.menu]
