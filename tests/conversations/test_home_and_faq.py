"""The home menu, free-text intents, FAQ answers from the manual, and no dead ends."""

from __future__ import annotations

import pytest

from tests.conversations.conftest import Service


def joined(texts: list[str]) -> str:
    return "\n".join(texts)


async def test_a_greeting_gets_the_menu_with_a_way_to_a_human(service: Service) -> None:
    answer = await service.chat.say("你好")
    assert "请选择业务" in joined(answer)
    labels = [o.label for o in service.chat.options()]
    assert "注册账号" in labels
    assert "转人工客服" in labels


async def test_gibberish_is_not_a_dead_end(service: Service) -> None:
    answer = await service.chat.say("asdfgh qwerty")
    assert "没有理解" in joined(answer)
    assert any(o.token == "@human" for o in service.chat.options())


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("什么时候能续期？", "不足 60 天"),
        ("请问多久能收到，是顺丰吗", "顺丰"),
        ("UKey 密码忘了怎么办", "12345678"),
        ("需要什么材料", "营业执照"),
        # No hotline in the settings: the answer offers the human hand-over, no made-up number.
        ("客服电话多少", "回复「人工」"),
    ],
)
async def test_questions_are_answered_from_the_manual(service: Service, question: str, expected: str) -> None:
    assert expected in joined(await service.chat.say(question))


async def test_faq_in_english_offers_the_process_it_is_about(service: Service) -> None:
    answer = await service.chat.say("when can I renew", lang="en")
    assert "less than 60 days" in joined(answer)
    assert any(o.token == "@go:my_seals" for o in service.chat.options())


@pytest.mark.parametrize(
    "phrase", ["注册", "我想注册一个账号", "开户", "sign up please", "I want to register"]
)
async def test_register_intents(service: Service, phrase: str) -> None:
    answer = joined(await service.chat.say(phrase))
    assert "第 1/3 步" in answer
    assert "手机号" in answer


@pytest.mark.parametrize("phrase", ["登录", "我要登陆", "登入账号", "log in", "sign in please"])
async def test_login_intents(service: Service, phrase: str) -> None:
    assert "手机号" in joined(await service.chat.say(phrase))


async def test_leaving_a_process_and_coming_back_resumes_it(service: Service) -> None:
    chat = service.chat
    await chat.say("注册")
    await chat.say("13800138000")
    menu = await chat.say("菜单")
    assert "继续上次未完成的业务" in [o.label for o in chat.options()], menu
    back = await chat.tap("继续上次未完成的业务")
    assert "继续办理「注册账号」" in joined(back)
    assert "验证码" in joined(back)


async def test_asking_for_another_process_at_a_choice_switches_and_keeps_the_first(service: Service) -> None:
    chat = service.chat
    await chat.say("登录")
    await chat.say("13800138000")  # now at the choice of login method
    switched = joined(await chat.say("我要注册"))
    assert "第 1/3 步" in switched
    assert "请输入您的手机号码" in switched
    await chat.say("菜单")
    assert "继续上次未完成的业务" in [o.label for o in chat.options()]


async def test_a_typed_answer_is_never_taken_for_another_process(service: Service) -> None:
    chat = service.chat
    await chat.say("实名认证")  # asks to log in first: the phone number field
    answer = joined(await chat.say("注册"))
    assert "手机号格式不正确" in answer


@pytest.fixture
def operator_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLATFORM_OPERATOR_HOTLINE", "400-800-1234")
    monkeypatch.setenv("PLATFORM_OPERATOR_COMPANY", "示例印章服务有限公司")
    monkeypatch.setenv("PLATFORM_OPERATOR_SUPPORT_HOURS", "工作日 9:00-18:00")


async def test_the_hotline_answer_names_the_operator_from_settings(
    operator_env: None, service: Service
) -> None:
    answer = joined(await service.chat.say("客服电话多少"))
    assert "400-800-1234（示例印章服务有限公司），服务时间 工作日 9:00-18:00" in answer
    assert "020-31700081" not in answer
