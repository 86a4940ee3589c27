"""The account processes of the manual, as chats: register, log in (two ways), log out, real name."""

from __future__ import annotations

from datetime import timedelta

from bot.secure_page.service import PasswordPages
from tests.conversations.conftest import Service
from tests.password_page import use_page

PHONE = "13800138000"
ID_NUMBER = "11010519491231002X"


def joined(texts: list[str]) -> str:
    return "\n".join(texts)


def pages_of(service: Service) -> PasswordPages:
    assert service.container.password_pages is not None
    return service.container.password_pages


async def register(service: Service, phone: str = PHONE, user: str = "u1", lang_en: bool = False) -> None:
    chat = service.chat
    await chat.say("Sign up" if lang_en else "注册", user=user)
    await chat.say(phone, user=user)
    await chat.say(service.sms_code(phone, "register"), user=user)
    view, _ = await use_page(pages_of(service), chat, "seal2024ok", user=user, browser=f"browser-{user}")
    assert view.status == "done", view


async def test_registration_binds_the_chat_to_a_new_account_in_chinese(service: Service) -> None:
    chat = service.chat
    first = await chat.say("你好，我想注册一个账号")
    assert "第 1/2 步" in joined(first)  # phone and code; the password is not a chat step
    assert "手机号" in joined(first)
    sent = await chat.say("+86 138-0013-8000")
    assert "验证码已发送到 138****8000" in joined(sent)
    assert "/platform/dev/sms" in joined(sent)
    link = await chat.say(service.sms_code(PHONE, "register"))
    assert "安全页面上设置登录密码" in joined(link)
    view, done = await use_page(pages_of(service), chat, "seal2024ok")
    assert view.status == "done"
    assert "注册成功" in joined(done)
    row = await service.container.store.get(chat.key("u1"))
    assert row is not None
    assert row.platform_account_id is not None
    # the phone and the token are sealed at rest, the password never stored
    raw = str(row.state)
    assert PHONE not in raw
    assert "seal2024ok" not in raw


async def test_registration_in_english_with_a_wrong_then_right_code(service: Service) -> None:
    chat = service.chat
    await chat.say("Sign up", lang="en")
    await chat.say(PHONE)
    wrong = await chat.say("000000")
    password_prompt = joined(wrong)
    assert "password" in password_prompt.lower()
    view, refused = await use_page(pages_of(service), chat, "seal2024ok")
    assert view.status == "refused"
    assert view.reason == "code"
    assert "not correct" in joined(refused)
    # the chat asks for the code again; the right one leads to a new page link
    again = await chat.say(service.sms_code(PHONE, "register"))
    assert "password" in joined(again).lower()
    view, done = await use_page(pages_of(service), chat, "seal2024ok")
    assert view.status == "done"
    assert "You are signed up" in joined(done)


async def test_expired_code_says_so_and_sends_a_new_one(service: Service) -> None:
    chat = service.chat
    await chat.say("注册")
    await chat.say(PHONE)
    old = service.sms_code(PHONE, "register")
    service.clock.advance(timedelta(minutes=6))
    await chat.say(old)
    view, answer = await use_page(pages_of(service), chat, "seal2024ok")
    assert view.reason == "code"
    assert "已失效" in joined(answer)
    assert "验证码已发送" in joined(answer)
    await chat.say(service.sms_code(PHONE, "register"))
    view, done = await use_page(pages_of(service), chat, "seal2024ok")
    assert "注册成功" in joined(done)


async def test_bad_phone_and_weak_password_are_explained_and_asked_again(service: Service) -> None:
    chat = service.chat
    await chat.say("注册")
    bad = await chat.say("12345")
    assert "13800138000" in joined(bad)
    assert "第 1/2 步" in joined(bad)
    await chat.say(PHONE)
    await chat.say(service.sms_code(PHONE, "register"))
    weak, _ = await use_page(pages_of(service), chat, "password")
    assert weak.status == "form"
    assert weak.error is not None
    assert "字母和数字" in weak.error
    differ, _ = await use_page(pages_of(service), chat, "seal2024ok", confirm="seal2024no")
    assert differ.error is not None
    assert "不一致" in differ.error


async def test_login_by_password_and_by_sms_code_and_logout(service: Service) -> None:
    await register(service, user="web-user")
    chat = service.chat
    await chat.say("退出登录", user="web-user")
    await chat.say("登录", user="other-chat")
    await chat.say(PHONE, user="other-chat")
    await chat.tap("手机号 + 密码", user="other-chat")
    wrong, _ = await use_page(pages_of(service), chat, "nope12345", user="other-chat")
    assert wrong.error is not None
    assert "手机号或密码不正确" in wrong.error
    view, ok = await use_page(pages_of(service), chat, "seal2024ok", user="other-chat")
    assert view.status == "done"
    assert "登录成功" in joined(ok)
    bye = await chat.say("退出登录", user="other-chat")
    assert "已退出登录" in joined(bye)
    await chat.say("log in", user="third", lang="en")
    await chat.say(PHONE, user="third")
    sent = await chat.tap("SMS code", user="third")
    assert "code has been sent" in joined(sent)
    ok = await chat.say(service.sms_code(PHONE, "login"), user="third")
    assert "Logged in" in joined(ok)


async def test_realname_verification_checks_the_id_and_confirms(service: Service) -> None:
    await register(service)
    chat = service.chat
    start = await chat.say("实名认证")
    assert "真实姓名" in joined(start)
    await chat.say("张三")
    typo = await chat.say("110105194912310021")
    assert "校验位" in joined(typo)
    summary = await chat.say(ID_NUMBER)
    assert ID_NUMBER in joined(summary)  # the owner checks the full number before submitting
    done = await chat.tap("确认无误")
    assert "实名认证成功" in joined(done)
    again = await chat.say("实名认证")
    assert "已经完成实名认证" in joined(again)


async def test_realname_asks_to_log_in_first_and_then_continues(service: Service) -> None:
    chat = service.chat
    await register(service, user="a")
    await chat.say("退出登录", user="a")
    answer = await chat.say("实名认证", user="a")
    assert "需要先登录" in joined(answer)
    await chat.say(PHONE, user="a")
    await chat.tap("手机号 + 密码", user="a")
    _, after_login = await use_page(pages_of(service), chat, "seal2024ok", user="a", browser="browser-a")
    assert "登录成功" in joined(after_login)
    assert "真实姓名" in joined(after_login)  # the process the user asked for continues
