"""Hostile or careless input: a clear message, the same question again, nothing else changed."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from bot.testing import ChatHarness
from tests.engine.transcript import PNG, Lang, fill_form

PDF = b"%PDF-1.7\n" + b"0" * 200
EXE = b"MZ\x90\x00" + b"\x00" * 200


async def _run_state(chat: ChatHarness) -> dict[str, Any]:
    row = await chat.store.get(chat.key("u1"))
    assert row is not None
    state = chat.engine.codec.load(row.state)
    assert state.run is not None
    return {"answers": dict(state.run.answers), "step": state.run.step, "history": list(state.run.history)}


def _same_apart_from_failures(before: dict[str, Any], after: dict[str, Any]) -> bool:
    return before == after


async def test_very_long_text_is_refused_with_the_limit(chat: ChatHarness, lang: Lang) -> None:
    await fill_form(chat, lang, until="company")
    before = await _run_state(chat)
    too_long = "（最多 200 个字）" if lang.code == "zh-CN" else "(at most 200 characters)"
    replies = await chat.say("公" * 10_000)
    assert len(replies) == 2
    assert too_long in replies[0]
    assert replies[1] == lang.step(3, 7, lang.ask_company)
    assert await _run_state(chat) == before
    log = await chat.store.inbound_log(chat.key("u1"), 1)
    assert len(log[0]["body"]["text"]) == 2000  # the log keeps a bounded excerpt


async def test_emoji_is_kept_in_a_name_and_refused_as_an_age(chat: ChatHarness, lang: Lang) -> None:
    await fill_form(chat, lang, until="name")
    await chat.say("张三😀👨‍👩‍👧")
    assert (await _run_state(chat))["answers"]["name"] == "张三😀👨‍👩‍👧"
    await chat.tap(lang.company)
    await chat.say("某某公司")
    refusal = "年龄需要是数字，例如 30。" if lang.code == "zh-CN" else "Age must be a number, for example 30."
    assert await chat.say("🎂30") == [refusal, lang.step(4, 7, lang.ask_age)]


async def test_control_and_bidi_characters_are_removed(chat: ChatHarness, lang: Lang) -> None:
    await fill_form(chat, lang, until="name")
    await chat.say("\x00张\u202e三\x07\u200b ")
    assert (await _run_state(chat))["answers"]["name"] == "张三"


async def test_text_of_only_control_characters_counts_as_empty(chat: ChatHarness, lang: Lang) -> None:
    await fill_form(chat, lang, until="name")
    before = await _run_state(chat)
    empty = (
        "内容不能为空，请重新输入。"
        if lang.code == "zh-CN"
        else "The answer cannot be empty. Please try again."
    )
    assert await chat.say("\x00\x1b\u200f  ") == [empty, lang.step(1, 7, lang.ask_name)]
    assert await _run_state(chat) == before


async def test_sql_looking_text_is_just_text(chat: ChatHarness, lang: Lang) -> None:
    await fill_form(chat, lang, until="name")
    evil = "'; DROP TABLE conversations; --"
    assert await chat.say(evil) == [lang.step(2, 7, lang.ask_kind)]
    assert (await _run_state(chat))["answers"]["name"] == evil
    async with chat.store.engine.connect() as conn:  # type: ignore[attr-defined]
        count = (await conn.execute(sa.text("SELECT count(*) FROM conversations"))).scalar_one()
    assert count == 1


async def test_a_pdf_named_png_is_judged_by_its_content(chat: ChatHarness, lang: Lang) -> None:
    await fill_form(chat, lang, until="scan")
    replies = await chat.upload(PDF, "licence.png", content_type="image/png")
    assert replies[-1].startswith(lang.step(7, 7, lang.summary_title))
    assert (await _run_state(chat))["answers"]["scan"][0]["content_type"] == "application/pdf"


async def test_an_executable_named_png_is_refused(chat: ChatHarness, lang: Lang) -> None:
    await fill_form(chat, lang, until="scan")
    before = await _run_state(chat)
    replies = await chat.upload(EXE, "licence.png", content_type="image/png")
    wrong = (
        "文件格式不支持：请上传 JPG/PDF/PNG 格式的文件（单个不超过 1 KB）。"
        if lang.code == "zh-CN"
        else "Unsupported file type: please upload JPG/PDF/PNG files (at most 1 KB each)."
    )
    assert replies == [wrong, lang.step(6, 7, lang.ask_scan)]
    assert await _run_state(chat) == before


async def test_an_oversized_file_is_refused_with_the_limit(chat: ChatHarness, lang: Lang) -> None:
    await fill_form(chat, lang, until="scan")
    before = await _run_state(chat)
    replies = await chat.upload(PNG + b"0" * 2048)
    too_large = "不能超过 1 KB" if lang.code == "zh-CN" else "at most 1 KB"
    assert len(replies) == 2
    assert too_large in replies[0]
    assert replies[1] == lang.step(6, 7, lang.ask_scan)
    assert await _run_state(chat) == before


async def test_a_file_where_text_is_expected_and_text_where_a_file_is(chat: ChatHarness, lang: Lang) -> None:
    await fill_form(chat, lang, until="age")
    replies = await chat.upload(PNG)
    assert replies[-1] == lang.step(4, 7, lang.ask_age)
    assert "age" not in (await _run_state(chat))["answers"]
    await chat.say("30")
    await chat.say("11010519491231002X")
    replies = await chat.say("这是扫描件")
    assert replies[-1] == lang.step(6, 7, lang.ask_scan)
    assert "JPG/PDF/PNG" in replies[0]


async def test_repeated_refusals_offer_a_human(chat: ChatHarness, lang: Lang) -> None:
    await fill_form(chat, lang, until="age")
    await chat.say("x")
    await chat.say("y")
    replies = await chat.say("z")
    assert len(replies) == 3
    assert any(o.token == "@human" for o in chat.options())
