"""Buttons bound to their prompt, cancelling that asks first, and drafts (issue 13, 1 and 2).

An old button (back, cancel, a choice) gets a short notice and the current question, never an
action on the current step; cancelling a run that holds answers asks first and keeps a draft
the menu offers for seven days.
"""

from __future__ import annotations

from datetime import timedelta

from bot.channels.telegram.render import CALLBACK_DATA_LIMIT, SendText, render
from bot.channels.wechat.render import numbered
from bot.engine.messages import Reply
from bot.testing import ChatHarness
from tests.engine.transcript import (
    CANCEL_CONFIRM,
    CANCEL_KEEP,
    CANCEL_REALLY,
    CANCELLED_DRAFT,
    STALE,
    Lang,
    fill_form,
    run_answers,
)

DRAFT = {"zh-CN": "从草稿继续：测试表单", "en": "Continue draft: Test form"}
RESUMED = {"zh-CN": "欢迎回来，继续办理「测试表单」。", "en": 'Welcome back. Let\'s continue "Test form".'}


async def test_an_old_cancel_button_only_says_it_expired_and_asks_the_current_question(
    chat: ChatHarness, lang: Lang
) -> None:
    await fill_form(chat, lang, until="kind")
    old_cancel = chat.option("取消" if lang.code == "zh-CN" else "Cancel").token
    await chat.tap(lang.company)
    await chat.say("某某科技有限公司")
    before = await run_answers(chat)
    assert await chat.tap("", token=old_cancel) == [STALE[lang.code], lang.step(4, 7, lang.ask_age)]
    assert await run_answers(chat) == before


async def test_an_old_back_button_does_not_go_back_from_the_current_step(
    chat: ChatHarness, lang: Lang
) -> None:
    await fill_form(chat, lang, until="company")
    old_back = chat.option("返回上一步" if lang.code == "zh-CN" else "Back").token
    await chat.say("某某科技有限公司")
    before = await run_answers(chat)
    assert await chat.tap("", token=old_back) == [STALE[lang.code], lang.step(4, 7, lang.ask_age)]
    assert await run_answers(chat) == before
    # The current back button still works.
    assert await chat.tap("返回上一步" if lang.code == "zh-CN" else "Back") == [
        lang.step(3, 7, lang.ask_company)
    ]


async def test_a_cancel_button_without_its_prompt_is_refused(chat: ChatHarness, lang: Lang) -> None:
    """A bare ``@cancel`` (what every cancel button carried before they were bound) is old."""
    await fill_form(chat, lang, until="age")
    before = await run_answers(chat)
    assert await chat.tap("", token="@cancel") == [STALE[lang.code], lang.step(4, 7, lang.ask_age)]
    assert await run_answers(chat) == before


async def test_cancelling_asks_first_and_continuing_keeps_every_answer(chat: ChatHarness, lang: Lang) -> None:
    await fill_form(chat, lang, until="age")
    before = await run_answers(chat)
    assert await chat.tap(lang.cancel if lang.code == "zh-CN" else "Cancel") == [CANCEL_CONFIRM[lang.code]]
    really = chat.option(CANCEL_REALLY[lang.code]).token
    assert await chat.tap(CANCEL_KEEP[lang.code]) == [lang.step(4, 7, lang.ask_age)]
    assert await run_answers(chat) == before
    # The confirming button of a question already answered cancels nothing.
    assert await chat.tap("", token=really) == [STALE[lang.code], lang.step(4, 7, lang.ask_age)]
    assert await run_answers(chat) == before


async def test_typing_the_label_of_a_button_does_what_tapping_it_does(chat: ChatHarness, lang: Lang) -> None:
    await fill_form(chat, lang, until="age")
    await chat.say(lang.cancel)
    assert await chat.say(CANCEL_KEEP[lang.code]) == [lang.step(4, 7, lang.ask_age)]


async def test_a_cancelled_draft_resumes_at_the_same_step_with_its_answers(
    chat: ChatHarness, lang: Lang
) -> None:
    await fill_form(chat, lang, until="age")
    before = await run_answers(chat)
    await chat.say(lang.cancel)
    assert await chat.tap(CANCEL_REALLY[lang.code]) == [CANCELLED_DRAFT[lang.code], lang.menu]
    assert await run_answers(chat) == {}
    assert await chat.tap(DRAFT[lang.code]) == [RESUMED[lang.code], lang.step(4, 7, lang.ask_age)]
    assert await run_answers(chat) == before
    # The draft is taken: the menu no longer offers it.
    await chat.say("菜单" if lang.code == "zh-CN" else "menu")
    assert DRAFT[lang.code] not in [o.label for o in chat.options()]


async def test_a_draft_is_offered_for_seven_days_and_then_forgotten(chat: ChatHarness, lang: Lang) -> None:
    await fill_form(chat, lang, until="age")
    await chat.say(lang.cancel)
    await chat.tap(CANCEL_REALLY[lang.code])
    chat.clock.advance(timedelta(days=6))
    await chat.say("菜单" if lang.code == "zh-CN" else "menu")
    assert DRAFT[lang.code] in [o.label for o in chat.options()]
    old_draft_button = chat.option(DRAFT[lang.code]).token
    chat.clock.advance(timedelta(days=2))
    await chat.say("菜单" if lang.code == "zh-CN" else "menu")
    assert DRAFT[lang.code] not in [o.label for o in chat.options()]
    gone = (
        "这份草稿已过期或已继续办理，请从菜单重新开始。"
        if lang.code == "zh-CN"
        else "That draft has expired or was already continued. Please start again from the menu."
    )
    assert await chat.tap("", token=old_draft_button) == [gone, lang.menu]


async def test_cancelling_with_nothing_answered_ends_at_once(chat: ChatHarness, lang: Lang) -> None:
    await fill_form(chat, lang, until="name")
    cancelled = "已取消「测试表单」。" if lang.code == "zh-CN" else '"Test form" cancelled.'
    assert await chat.say(lang.cancel) == [cancelled, lang.menu]
    assert DRAFT[lang.code] not in [o.label for o in chat.options()]


async def test_bound_buttons_fit_telegram_callback_data_and_stay_navigation_in_every_channel(
    chat: ChatHarness, lang: Lang
) -> None:
    await fill_form(chat, lang, until="age")
    await chat.say(lang.back)  # the company prompt: back and cancel
    options = tuple(chat.options())
    assert all(len(o.token.encode()) <= CALLBACK_DATA_LIMIT for o in options)
    (op,) = render(Reply.text_reply("q", options))
    assert isinstance(op, SendText)
    assert op.keyboard is not None
    rows = op.keyboard.inline_keyboard
    assert [b.callback_data for b in rows[-1]] == [o.token for o in options]  # navigation row
    # WeChat numbers answers only: navigation links carry no number
    assert not any(line[:1].isdigit() for line in numbered("q", options).splitlines()[1:])
