"""Editing from the summary, back, cancel, help, stale buttons and switching language."""

from __future__ import annotations

from bot.testing import ChatHarness
from tests.engine.transcript import (
    CANCEL_CONFIRM,
    CANCEL_REALLY,
    CANCELLED_DRAFT,
    EN,
    STALE,
    ZH,
    Lang,
    fill_form,
    run_answers,
)


async def test_editing_the_kind_from_the_summary_invalidates_the_company_name(
    chat: ChatHarness, lang: Lang
) -> None:
    summary = (await fill_form(chat, lang, until="confirm"))[-1]
    company_name = "某某科技有限公司" if lang.code == "zh-CN" else "Acme Ltd"
    assert company_name in summary

    assert await chat.tap(lang.edit_kind) == [lang.step(2, 6, lang.ask_kind)]
    summary = (await chat.tap(lang.person))[-1]
    assert summary.startswith(lang.step(6, 6, lang.summary_title))
    assert company_name not in summary
    assert "company" not in await run_answers(chat)

    # Back to "company": the old name is not resurrected, it is asked for again.
    await chat.tap(lang.edit_kind)
    assert await chat.tap(lang.company) == [lang.step(3, 7, lang.ask_company)]
    assert "company" not in await run_answers(chat)
    summary = (await chat.say("新公司" if lang.code == "zh-CN" else "New Co"))[-1]
    assert ("新公司" if lang.code == "zh-CN" else "New Co") in summary
    assert company_name not in summary


async def test_editing_an_answer_without_dependents_keeps_the_others(chat: ChatHarness, lang: Lang) -> None:
    await fill_form(chat, lang, until="confirm")
    await chat.tap("修改年龄" if lang.code == "zh-CN" else "Change Age")
    summary = (await chat.say("41"))[-1]
    assert summary.startswith(lang.step(7, 7, lang.summary_title))
    answers = await run_answers(chat)
    assert answers["age"] == 41
    assert answers["company"]
    assert answers["name"]


async def test_back_returns_to_the_previous_question_and_forgets_its_answer(
    chat: ChatHarness, lang: Lang
) -> None:
    await fill_form(chat, lang, until="age")
    assert await chat.say(lang.back) == [lang.step(3, 7, lang.ask_company)]
    assert "company" not in await run_answers(chat)
    assert await chat.say(lang.back) == [lang.step(2, 6, lang.ask_kind)]
    assert await chat.say(lang.back) == [lang.step(1, 6, lang.ask_name)]
    at_first = await chat.say(lang.back)
    assert at_first == [
        "已经是第一步了。" if lang.code == "zh-CN" else "This is already the first step.",
        lang.step(1, 6, lang.ask_name),
    ]


async def test_cancel_ends_the_process_and_shows_the_menu(chat: ChatHarness, lang: Lang) -> None:
    await fill_form(chat, lang, until="age")
    # Answers are held, so cancelling asks first (issue 13) and keeps a draft.
    assert await chat.say(lang.cancel) == [CANCEL_CONFIRM[lang.code]]
    cancelled = CANCELLED_DRAFT[lang.code]
    assert await chat.tap(CANCEL_REALLY[lang.code]) == [cancelled, lang.menu]
    row = await chat.store.get(chat.key("u1"))
    assert row is not None
    assert row.flow is None
    assert row.state["run"] is None
    # Starting again begins from scratch.
    assert await chat.tap(lang.form) == [lang.step(1, 6, lang.ask_name)]


async def test_help_explains_navigation_and_asks_the_same_question_again(
    chat: ChatHarness, lang: Lang
) -> None:
    await fill_form(chat, lang, until="age")
    replies = await chat.say(lang.help)
    assert len(replies) == 2
    assert ("返回" if lang.code == "zh-CN" else '"back"') in replies[0]
    assert replies[1] == lang.step(4, 7, lang.ask_age)
    assert "age" not in await run_answers(chat)


async def test_a_stale_button_after_the_flow_moved_on_gets_a_helpful_answer(
    chat: ChatHarness, lang: Lang
) -> None:
    await fill_form(chat, lang, until="kind")
    old_company_button = chat.option(lang.company).token
    await chat.tap(lang.company)
    await chat.say("某某科技有限公司")
    before = await run_answers(chat)

    replies = await chat.tap("", token=old_company_button)
    stale = STALE[lang.code]
    assert replies == [stale, lang.step(4, 7, lang.ask_age)]
    assert await run_answers(chat) == before


async def test_a_button_from_a_finished_run_is_stale_in_the_next_run(chat: ChatHarness, lang: Lang) -> None:
    await fill_form(chat, lang, until="kind")
    run1_button = chat.option(lang.company).token
    await chat.say(lang.cancel)
    await chat.tap(CANCEL_REALLY[lang.code])
    await chat.tap(lang.form)
    await chat.say("李四")
    replies = await chat.tap("", token=run1_button)
    assert replies[-1] == lang.step(2, 6, lang.ask_kind)
    assert "kind" not in await run_answers(chat)


async def test_switching_language_mid_form_repeats_the_question_in_the_new_language(
    chat: ChatHarness,
) -> None:
    await fill_form(chat, ZH, until="age")
    assert await chat.say("English") == ["Switched to English.", EN.step(4, 7, EN.ask_age)]
    assert await chat.say("x") == ["Age must be a number, for example 30.", EN.step(4, 7, EN.ask_age)]
    assert await chat.say("中文") == ["已切换为中文。", ZH.step(4, 7, ZH.ask_age)]
    assert await chat.say("30") == [ZH.step(5, 7, ZH.ask_id)]
    row = await chat.store.get(chat.key("u1"))
    assert row is not None
    assert row.state["locale"] == "zh-CN"


async def test_the_users_language_choice_outlives_the_channel_hint(chat: ChatHarness) -> None:
    await chat.say("hi", lang="zh-CN")
    await chat.say("English")
    # A later message still carrying the channel's zh hint does not switch back.
    assert await chat.say("menu", lang="zh-CN") == [EN.menu]


async def test_numbers_pick_options_and_text_labels_are_matched(chat: ChatHarness, lang: Lang) -> None:
    await fill_form(chat, lang, until="kind")
    assert await chat.say("2") == [lang.step(3, 6, lang.ask_age)]  # 2 = person
    await chat.say(lang.back)
    assert await chat.say(lang.company.lower()) == [lang.step(3, 7, lang.ask_company)]
