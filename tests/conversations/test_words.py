"""Words (issue 13, 6): every label typed does what tapping it does, greetings get a greeting,
synonyms reach their process, and at a free-text field a question is answered (and the field
asked again) while a process name is confirmed before it is taken as the answer."""

from __future__ import annotations

import pytest

from tests.conversations.conftest import Service
from tests.conversations.test_apply_enterprise import COMPANY, joined, verified_applicant


async def pending_flow(service: Service) -> str | None:
    """The process a logged-out user is asked to log in for (it waits on the stack)."""
    row = await service.chat.store.get(service.chat.key("u1"))
    assert row is not None
    stack = row.state["stack"]
    return str(stack[-1]["flow"]) if stack else (row.state["run"] or {}).get("flow")


@pytest.mark.parametrize(
    ("label", "flow", "lang"),
    [
        ("申请企业印章", "apply_enterprise", "zh-CN"),
        ("UKey 助手（电脑）", "bridges", "zh-CN"),
        ("Apply for a company seal", "apply_enterprise", "en"),
    ],
)
async def test_a_menu_label_typed_starts_its_process(
    service: Service, label: str, flow: str, lang: str
) -> None:
    await service.chat.say("hello" if lang == "en" else "你好", lang=lang)
    await service.chat.say(label, lang=lang)
    assert await pending_flow(service) == flow


@pytest.mark.parametrize(("label", "lang"), [("转人工客服", "zh-CN"), ("Talk to a human", "en")])
async def test_the_human_label_typed_reaches_a_person(service: Service, label: str, lang: str) -> None:
    await service.chat.say("你好", lang=lang)
    answer = joined(await service.chat.say(label, lang=lang))
    assert ("人工客服" if lang == "zh-CN" else "support staff") in answer
    row = await service.chat.store.get(service.chat.key("u1"))
    assert row is not None
    assert row.owner == "waiting"


@pytest.mark.parametrize(
    ("greeting", "lang", "expected"),
    [("你好！", "zh-CN", "您好！很高兴为您服务。"), ("Hi", "en", "Hello! Glad to help.")],
)
async def test_a_greeting_gets_a_greeting_and_the_menu(
    service: Service, greeting: str, lang: str, expected: str
) -> None:
    answer = await service.chat.say(greeting, lang=lang)
    assert answer[0] == expected
    assert any(o.token == "@go:faq" for o in service.chat.options())


@pytest.mark.parametrize(
    ("phrase", "flow"),
    [
        ("我想改密码", "pin_change"),
        ("帮我开票", "invoice"),
        ("发票", "invoice"),
        ("办个公章", "apply_enterprise"),
        ("I need an invoice please", "invoice"),
    ],
)
async def test_synonyms_reach_their_process(service: Service, phrase: str, flow: str) -> None:
    await service.chat.say(phrase)
    assert await pending_flow(service) == flow


async def at_company_name(service: Service, lang: str = "zh") -> list[str]:
    """A verified applicant at the company-name field of the company seal application."""
    await verified_applicant(service, lang=lang)
    await service.chat.say("apply for enterprise seal" if lang == "en" else "我要申请企业公章")
    return await service.chat.tap("The company seal only" if lang == "en" else "只办企业公章")


async def test_a_question_at_a_name_field_is_answered_and_the_field_asked_again(service: Service) -> None:
    chat = service.chat
    ask = await at_company_name(service)
    assert "请输入企业名称" in ask[-1]
    answer = await chat.say("印章做好以后多久能收到")
    assert "顺丰" in joined(answer)
    assert "请输入企业名称" in answer[-1]
    # The field takes its answer afterwards, and the question was not stored as the name.
    assert "统一社会信用代码" in joined(await chat.say(COMPANY))


async def test_a_question_at_a_name_field_in_english(service: Service) -> None:
    chat = service.chat
    await at_company_name(service, "en")
    answer = await chat.say("How long is the review going to take?")
    assert "company name" in answer[-1]
    assert len(answer) > 1


async def test_a_process_name_at_a_text_field_is_confirmed_before_it_is_an_answer(service: Service) -> None:
    chat = service.chat
    await at_company_name(service)
    asked = await chat.say("注销印章")
    assert asked == ["您输入的是「注销印章」。是要办理「印章注销」，还是把它作为这一项的答案？"]
    labels = [o.label for o in chat.options()]
    assert labels == ["就填「注销印章」", "办理「印章注销」"]
    # Taken as the answer only when the user says so.
    assert "统一社会信用代码" in joined(await chat.tap("就填「注销印章」"))


async def test_a_process_name_at_a_text_field_can_start_that_process_in_english(service: Service) -> None:
    chat = service.chat
    await at_company_name(service, "en")
    asked = await chat.say("cancel my seal")
    assert asked[0].startswith('You wrote "cancel my seal".')
    await chat.tap("Start")
    row = await chat.store.get(chat.key("u1"))
    assert row is not None
    assert row.flow != "apply_enterprise"
    assert "apply_enterprise" in row.state["memory"]["_paused"]  # the application is kept aside
