"""退出所有设备: every session of the account ends, in this chat and in every other one."""

from __future__ import annotations

import pytest

from bot.secure_page.service import PasswordPages
from platform_client.errors import NotAuthenticated
from tests.conversations.conftest import Service
from tests.password_page import use_page

PHONE = "13800138601"


def pages_of(service: Service) -> PasswordPages:
    assert service.container.password_pages is not None
    return service.container.password_pages


async def token_of(service: Service, user: str) -> str:
    row = await service.container.store.get(service.chat.key(user))
    assert row is not None
    state = service.container.engine.codec.load(row.state)
    assert state.session is not None
    return state.session.token


async def test_log_out_everywhere_ends_the_sessions_of_every_chat(service: Service) -> None:
    chat = service.chat
    await chat.say("注册", user="phone")
    await chat.say(PHONE, user="phone")
    await chat.say(service.sms_code(PHONE, "register"), user="phone")
    await use_page(pages_of(service), chat, "seal2024ok", user="phone", browser="b-phone")
    await chat.say("登录", user="office-pc")
    await chat.say(PHONE, user="office-pc")
    await chat.tap("手机号 + 短信验证码", user="office-pc")
    await chat.say(service.sms_code(PHONE, "login"), user="office-pc")
    office_token = await token_of(service, "office-pc")

    answer = await chat.say("退出所有设备", user="phone")
    assert "已退出所有设备" in "\n".join(answer)
    row = await service.container.store.get(chat.key("phone"))
    assert row is not None
    assert row.platform_account_id is None
    with pytest.raises(NotAuthenticated):
        await service.container.platform.accounts.me(office_token)
