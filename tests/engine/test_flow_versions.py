"""Deploys change flows under live conversations: they resume where the new version needs them."""

from __future__ import annotations

from bot.engine.flow import FlowRegistry
from bot.testing import ChatHarness
from tests.engine.conftest import LOCALES
from tests.engine.flows_for_tests import FORM, FORM_V2
from tests.engine.transcript import ID_NUMBER, STALE, Lang, fill_form


def _resumed(lang: Lang) -> str:
    return (
        "「测试表单」的办理流程已更新，已保留您填写的信息，请继续回答下面的问题。"
        if lang.code == "zh-CN"
        else 'The "Test form" process has been updated. Your answers are kept; please answer the question below.'
    )


def _ask_phone(lang: Lang) -> str:
    return "请输入手机号：" if lang.code == "zh-CN" else "Your mobile number:"


async def _redeploy(db_url: str, flows: FlowRegistry) -> ChatHarness:
    return await ChatHarness.create(flows=flows, db_url=db_url, catalog_dirs=[LOCALES], schema=False)


async def test_a_version_bump_resumes_at_the_first_step_the_new_version_needs(
    db_url: str, lang: Lang
) -> None:
    v1 = await ChatHarness.create(flows=FlowRegistry([FORM]), db_url=db_url, catalog_dirs=[LOCALES])
    await fill_form(v1, lang, until="id_number")  # name, kind, company, age answered
    await v1.close()

    v2 = await _redeploy(db_url, FlowRegistry([FORM_V2]))
    try:
        # The user answers the question v1 asked (the ID number); v2 first needs the phone, so
        # the answer is not filed under the phone: the user is told and asked for it.
        replies = await v2.say(ID_NUMBER)
        assert replies == [_resumed(lang), lang.step(2, 7, _ask_phone(lang))]
        assert await v2.say("13812345678") == [lang.step(5, 7, lang.ask_id)]
        await v2.say(ID_NUMBER)
        summary = (await v2.upload(b"\x89PNG\r\n\x1a\n" + b"2" * 40))[-1]
        assert summary.startswith(lang.step(7, 7, lang.summary_title))
        assert "13812345678" in summary  # in full for the owner to check
        assert "30" not in summary  # the removed age is gone
        row = await v2.store.get(v2.key("u1"))
        assert row is not None
        answers = row.state["run"]["answers"]
        assert "age" not in answers
        assert row.state["run"]["version"] == 2
        assert "13812345678" not in str(row.state)  # the new sensitive field is sealed
    finally:
        await v2.close()


async def test_a_confirmed_summary_is_confirmed_again_when_a_new_version_asks_more(
    db_url: str, lang: Lang
) -> None:
    v1 = await ChatHarness.create(flows=FlowRegistry([FORM]), db_url=db_url, catalog_dirs=[LOCALES])
    await fill_form(v1, lang, until="payment")  # confirmed, waiting for payment
    await v1.close()

    v2 = await _redeploy(db_url, FlowRegistry([FORM_V2]))
    try:
        assert await v2.say("在吗") == [_resumed(lang), lang.step(2, 7, _ask_phone(lang))]
        summary = (await v2.say("13812345678"))[-1]
        assert summary.startswith(lang.step(7, 7, lang.summary_title))  # not silently submitted
        # What the v1 submit action stored (the order id) survived: the same order is awaited.
        row = await v2.store.get(v2.key("u1"))
        assert row is not None
        assert row.state["run"]["answers"]["order_id"] == "order-1"
    finally:
        await v2.close()


async def test_an_unchanged_current_step_takes_the_answer_after_a_version_bump(
    db_url: str, lang: Lang
) -> None:
    v1 = await ChatHarness.create(flows=FlowRegistry([FORM]), db_url=db_url, catalog_dirs=[LOCALES])
    await fill_form(v1, lang, until="name")
    await v1.close()
    v2 = await _redeploy(db_url, FlowRegistry([FORM_V2]))
    try:
        assert await v2.say("张三") == [lang.step(2, 7, _ask_phone(lang))]
    finally:
        await v2.close()


async def test_a_removed_flow_gets_the_process_retired_answer(db_url: str, lang: Lang) -> None:
    v1 = await ChatHarness.create(flows=FlowRegistry([FORM]), db_url=db_url, catalog_dirs=[LOCALES])
    await fill_form(v1, lang, until="age")
    old_button = v1.options()[0].token
    await v1.close()

    gone = await _redeploy(db_url, FlowRegistry([]))
    try:
        retired = (
            "您之前办理的流程已更新，请从菜单重新开始，已填写的信息需要重新确认。"
            if lang.code == "zh-CN"
            else "The process you had started has been updated. Please start again from the menu and confirm your details once more."
        )
        replies = await gone.say("30")
        assert replies[0] == retired
        assert replies[1] == lang.menu  # and the user is not left without a way on
        row = await gone.store.get(gone.key("u1"))
        assert row is not None
        assert row.state["run"] is None
        # A button from the retired process is stale, not an error.
        replies = await gone.tap("", token=old_button)
        assert replies[0] == STALE[lang.code]
    finally:
        await gone.close()
