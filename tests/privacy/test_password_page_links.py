"""The page's link: single use, 10 minutes (injected clock), bound to the browser that first
used it; every refusal changes nothing and the chat offers a new link."""

from __future__ import annotations

from datetime import timedelta

from bot.secure_page.service import PasswordPages
from tests.conversations.conftest import Service
from tests.password_page import last_page_link, token_of, use_page

PHONE = "13800138201"
PASSWORD = "seal2024ok"


def pages_of(service: Service) -> PasswordPages:
    assert service.container.password_pages is not None
    return service.container.password_pages


async def at_the_page(service: Service) -> str:
    chat = service.chat
    await chat.say("注册")
    await chat.say(PHONE)
    await chat.say(service.sms_code(PHONE, "register"))
    return last_page_link(chat)


async def account_count(service: Service) -> int:
    from sqlalchemy import func, select

    from seal_platform.accounts import Account

    async with service.container.platform_services.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(Account)) or 0)


async def test_a_link_used_twice_is_refused(service: Service) -> None:
    url = await at_the_page(service)
    view, chat_after = await use_page(pages_of(service), service.chat, PASSWORD, url=url)
    assert view.status == "done"
    assert "注册成功" in "\n".join(chat_after)
    again, _ = await use_page(pages_of(service), service.chat, PASSWORD, url=url)
    assert again.status == "refused"
    assert again.reason == "used"
    assert await account_count(service) == 1


async def test_a_link_after_ten_minutes_is_refused_and_the_chat_offers_a_new_one(service: Service) -> None:
    url = await at_the_page(service)
    service.clock.advance(timedelta(minutes=10, seconds=1))
    view, _ = await use_page(pages_of(service), service.chat, PASSWORD, url=url)
    assert view.status == "refused"
    assert view.reason == "expired"
    await service.settle()
    said = service.chat.transcript()[-2:]
    assert "已过期" in said[0]
    assert any(o.label == "获取新链接" for o in service.chat.sender.sent[-1].reply.options)
    assert await account_count(service) == 0
    # the new link works
    await service.chat.tap("获取新链接")
    fresh = last_page_link(service.chat)
    assert fresh != url
    # the SMS code (5 minutes) ran out meanwhile: the chat sends a new one, then a new link
    view, resent = await use_page(pages_of(service), service.chat, PASSWORD, url=fresh)
    assert view.reason == "code"
    assert "验证码已发送" in "\n".join(resent)
    await service.chat.say(service.sms_code(PHONE, "register"))
    view, done = await use_page(pages_of(service), service.chat, PASSWORD)
    assert view.status == "done"
    assert "注册成功" in "\n".join(done)


async def test_the_wait_times_out_with_the_link_and_says_so(service: Service) -> None:
    url = await at_the_page(service)
    service.clock.advance(timedelta(minutes=11))
    assert await service.container.engine.fire_due_timeouts() == 1
    await service.settle()
    assert "已过期" in service.chat.transcript()[-2] + service.chat.transcript()[-1]
    view, _ = await use_page(pages_of(service), service.chat, PASSWORD, url=url)
    assert view.status == "refused"


async def test_an_old_link_stops_working_when_a_new_one_is_asked_for(service: Service) -> None:
    old = await at_the_page(service)
    await service.chat.tap("获取新链接")
    view, _ = await use_page(pages_of(service), service.chat, PASSWORD, url=old)
    assert view.reason == "used"


async def test_a_forwarded_link_is_refused_in_another_browser(service: Service) -> None:
    url = await at_the_page(service)
    pages = pages_of(service)
    token = token_of(pages, url)
    mine = await pages.open(token, "my-browser")
    # a wrong confirmation still claims the link for this browser
    first = await pages.submit(
        token, "my-browser", csrf=mine.csrf, password=PASSWORD, confirm="different1", client="1.2.3.4"
    )
    assert first.status == "form"
    other = await pages.open(token, "someone-elses-browser")
    assert other.status == "refused"
    assert other.reason == "other_browser"
    await service.settle()
    assert "另一个浏览器" in service.chat.transcript()[-2] + service.chat.transcript()[-1]
    # a forged CSRF token from the right browser is refused too
    forged = await pages.submit(
        token, "my-browser", csrf="forged", password=PASSWORD, confirm=PASSWORD, client="1.2.3.4"
    )
    assert forged.status == "form"
    assert await account_count(service) == 0


async def test_wrong_passwords_on_the_page_count_toward_the_lockout(service: Service) -> None:
    url = await at_the_page(service)
    await use_page(pages_of(service), service.chat, PASSWORD, url=url)
    chat = service.chat
    await chat.say("退出登录")
    await chat.say("登录")
    await chat.say(PHONE)
    await chat.tap("手机号 + 密码")
    errors = []
    for _ in range(5):
        view, _ = await use_page(pages_of(service), chat, "wrong-pass-1")
        errors.append(view.error or "")
    assert "还可以再试 4 次" in errors[0]
    assert "锁定" in errors[-1]
    locked, _ = await use_page(pages_of(service), chat, PASSWORD)
    assert locked.error is not None
    assert "锁定" in locked.error


async def test_a_forged_link_is_refused(service: Service) -> None:
    url = await at_the_page(service)
    pages = pages_of(service)
    token = token_of(pages, url)
    payload, _, signature = token.partition(".")
    view = await pages.open(payload + "." + signature[::-1], "b")
    assert view.reason == "invalid"
