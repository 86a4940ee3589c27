"""Web-chat sessions: server-issued signed cookies, rotated at login and logout, expired
after inactivity; the pages send the security headers."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest
from fastapi import Response

from bot.channels.webchat.sessions import COOKIE, WebSessions
from bot.engine.messages import Inbound
from tests.conversations.conftest import Service
from tests.wired_service import Wired

PASSWORD = "Xq7secretPass99"
LINK = re.compile(r"/secure/password\?t=[A-Za-z0-9_.%-]+")
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def status_with(base: str, cookie: str) -> int:
    """The status of a poll made with ``cookie`` alone (another browser holding a copy)."""
    async with httpx.AsyncClient(base_url=base, cookies={COOKIE: cookie}) as other:
        return (await other.get("/chat/api/messages", params={"wait": 0})).status_code


async def texts(web: httpx.AsyncClient) -> list[str]:
    got = await web.get("/chat/api/messages", params={"after": 0, "wait": 0})
    assert got.status_code == 200, got.text
    return [f"{m['text']} {m['url'] or ''}" for m in got.json()["messages"]]


async def wait_for(web: httpx.AsyncClient, expect: str) -> list[str]:
    import asyncio

    for _ in range(300):
        got = await texts(web)
        if any(expect in t for t in got):
            return got
        await asyncio.sleep(0.05)
    raise AssertionError(f"{expect!r} never came")


async def test_a_cookie_chosen_by_the_client_is_refused(wired: Wired) -> None:
    async with httpx.AsyncClient(base_url=wired.base) as web:
        assert await status_with(wired.base, "my-own-chat-id") == 401
        forged = "A" * 24 + ".0." + "B" * 43
        assert await status_with(wired.base, forged) == 401
        web.cookies.set(COOKIE, forged)
        page = await web.get("/chat")
        issued = page.cookies.get(COOKIE)
        assert issued is not None
        assert issued != forged
        header = page.headers["set-cookie"].lower()
        assert "httponly" in header
        assert "samesite=lax" in header
        assert "secure" not in header  # the public URL of this test service is http


def test_the_cookie_is_secure_when_the_public_url_is_https(service: Service) -> None:
    sessions = WebSessions(
        secret="s", engine=service.container.engine, store=service.container.store, https=True
    )
    response = Response()
    sessions.set_cookie(response, sessions.new())
    assert "secure" in response.headers["set-cookie"].lower()


async def test_the_cookie_rotates_at_login_and_logout_and_logout_clears_the_view(wired: Wired) -> None:
    phone = "13800138401"
    async with httpx.AsyncClient(base_url=wired.base) as web:
        await web.get("/chat")
        before_login = web.cookies[COOKIE]
        count = 0

        async def say(text: str) -> None:
            nonlocal count
            count += 1
            sent = await web.post("/chat/api/send", json={"client_id": f"client{count:04d}", "text": text})
            assert sent.status_code == 200

        await say("注册")
        await say(phone)
        await wait_for(web, "验证码已发送")
        await say(wired.sms_code(phone, "register"))
        url = LINK.search("\n".join(await wait_for(web, "/secure/password")))
        assert url is not None
        form = await web.get(url.group(0))
        csrf = CSRF.search(form.text)
        assert csrf is not None
        data = {"csrf": csrf.group(1), "password": PASSWORD, "confirm": PASSWORD}
        done = await web.post(url.group(0), data=data)
        assert "注册完成" in done.text
        after_login = web.cookies[COOKIE]
        assert after_login != before_login  # rotated by the page, in the same browser
        await wait_for(web, "注册成功")
        assert await status_with(wired.base, before_login) == 401
        await say("退出登录")
        after_logout = web.cookies[COOKIE]
        assert after_logout != after_login
        assert await status_with(wired.base, after_login) == 401
        # this browser's view starts empty: nothing of the logged-in chat is shown any more,
        # but the user is told the logout happened (it was answered in the old chat). The
        # notice is delivered by the outbox like any reply, so a loaded machine may need a
        # moment before the poll shows it.
        shown = await wait_for(web, "您已退出登录")
        assert not any("注册成功" in t for t in shown)
        assert [t for t in shown if "退出登录" in t] == [
            "您已退出登录。这个浏览器里的聊天记录已清除；需要继续办理时请重新登录或注册。 "
        ]


async def test_pages_send_the_security_headers(wired: Wired) -> None:
    async with httpx.AsyncClient(base_url=wired.base) as web:
        for path in ("/chat", "/support/login", "/platform/console/login", "/secure/password?t=x"):
            page = await web.get(path)
            assert "frame-ancestors 'none'" in page.headers["content-security-policy"], path
            assert page.headers["x-frame-options"] == "DENY", path
            assert page.headers["x-content-type-options"] == "nosniff", path
            assert page.headers["referrer-policy"] in {"same-origin", "no-referrer"}, path


async def test_a_logged_in_web_chat_is_logged_out_after_thirty_idle_minutes(service: Service) -> None:
    container = service.container
    sessions: WebSessions = container.webchat.sessions
    platform = container.platform
    phone = "13800138402"
    await platform.accounts.send_sms_code(phone, "register")
    await platform.accounts.register(phone, service.sms_code(phone, "register"), PASSWORD)
    web = sessions.new()
    steps = ["登录", phone, "2"]
    for number, text in enumerate(steps):
        await container.engine.handle(
            Inbound.text_message(web.key, f"w:{number}", text, at=service.clock.now())
        )
    code = service.sms_code(phone, "login")
    await container.engine.handle(Inbound.text_message(web.key, "w:code", code, at=service.clock.now()))
    logged_in = await sessions.after_message(web, None)
    assert await sessions.account_of(logged_in) is not None
    assert logged_in.cookie is not None
    service.clock.advance(timedelta(minutes=29))
    still = await sessions.read(logged_in.cookie)
    assert still is not None
    assert still.cookie is None
    service.clock.advance(timedelta(minutes=2))
    expired = await sessions.read(logged_in.cookie)
    assert expired is not None
    assert expired.cookie is not None  # rotated
    assert await sessions.account_of(expired) is None
    assert await sessions.read(logged_in.cookie) is None  # the old cookie no longer works
    await service.settle()
    delivered = await container.store.delivered(web.key, 0, 100)
    assert any("自动退出登录" in m.reply.text for m in delivered)


def test_production_refuses_a_plain_http_public_url() -> None:
    from pydantic import SecretStr

    from bot.errors import ConfigError
    from bot.settings import Settings

    settings = Settings(
        production=True,
        secret_key=SecretStr("a-private-secret-key"),
        public_base_url="http://seal.example.com",
    )
    with pytest.raises(ConfigError, match="SEALBOT_PUBLIC_BASE_URL"):
        settings.check()
    https = Settings(
        production=True,
        secret_key=SecretStr("a-private-secret-key"),
        # main's production check wants a private platform service key as well
        platform_service_key=SecretStr("a-private-service-key"),
        public_base_url="https://seal.example.com",
    )
    https.check()
    assert https.is_https
