"""In every channel the password is never a chat step: registration, password login and reset
go through the secure page, and the chat continues by itself afterwards.

WeChat and Telegram run against their fake API servers, the web chat over HTTP, all in the
service as ``sealbot serve`` builds it; the page is used over HTTP as a browser would.
"""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import Callable

import httpx

from bot.channels.terminal import TerminalSender, terminal_loop
from bot.secure_page.terminal import TerminalPasswordPage
from tests.channels.conftest import TG_SECRET, WX_APPID, WX_TOKEN
from tests.channels.wechat_server import WeChatServer
from tests.wired_service import Wired

PASSWORD = "Xq7secretPass99"
LINK = re.compile(r"https?://[^\s\"'<>]+/secure/password\?t=[A-Za-z0-9_.%-]+")
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def eventually(
    check: Callable[[], object], seconds: float = 15.0, detail: Callable[[], object] | None = None
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"condition not met in time: {detail() if detail else ''}")


def page_links(texts: list[str]) -> list[str]:
    return [m.group(0) for text in texts for m in LINK.finditer(text)]


async def fill_page(url: str, password: str, *, confirm: bool) -> httpx.Response:
    """What a browser does: open the link (gets the cookie and the form), submit the form."""
    async with httpx.AsyncClient() as browser:
        form = await browser.get(url)
        assert form.status_code == 200, form.text
        assert form.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in form.headers["content-security-policy"]
        assert form.headers["referrer-policy"] == "no-referrer"
        match = CSRF.search(form.text)
        assert match is not None
        data = {"csrf": match.group(1), "password": password}
        if confirm:
            data["confirm"] = password
        return await browser.post(url, data=data)


class WeChatUser:
    def __init__(self, wired: Wired, openid: str) -> None:
        self.wired, self.openid = wired, openid
        self.signer = WeChatServer(token=WX_TOKEN, appid=WX_APPID)
        self.passive: list[str] = []

    def texts(self) -> list[str]:
        return self.passive + [str(m) for m in self.wired.wechat.customer_messages(self.openid)]

    async def say(self, text: str) -> None:
        callback = self.signer.sign(self.signer.text(self.openid, text))
        async with httpx.AsyncClient(base_url=self.wired.base) as http:
            answer = await http.post("/wechat", params=callback.query, content=callback.body, timeout=15)
        assert answer.status_code == 200
        reply = self.signer.read_reply(answer.text)
        if reply:
            self.passive.append(reply.get("Content", ""))


class TelegramUser:
    def __init__(self, wired: Wired, user_id: int) -> None:
        self.wired, self.user_id = wired, user_id

    def texts(self) -> list[str]:
        calls = self.wired.telegram.calls_of("sendMessage")
        return [str(c.params) for c in calls if c.params.get("chat_id") == self.user_id]

    async def say(self, text: str) -> None:
        async with httpx.AsyncClient(base_url=self.wired.base) as http:
            accepted = await http.post(
                "/telegram/hook-path",
                json=self.wired.telegram.text_update(self.user_id, text),
                headers={"X-Telegram-Bot-Api-Secret-Token": TG_SECRET},
            )
        assert accepted.status_code == 200


async def say_and_wait(user: WeChatUser | TelegramUser, text: str, expect: str) -> None:
    """Send ``text`` and wait for one more message containing ``expect`` (WeChat answers
    partly in the callback's reply and partly by customer messages: counted, not ordered)."""

    def count() -> int:
        return sum(expect in t for t in user.texts())

    before = count()
    await user.say(text)
    await eventually(lambda: count() > before, detail=lambda: user.texts()[-6:])


ZH = {
    "register": "注册",
    "ask_phone": "手机号",
    "code": "验证码",
    "registered_page": "注册完成",
    "registered": "注册成功",
    "logout": "退出登录",
    "logged_out": "已退出登录",
    "login": "登录",
    "method": "登录方式",
    "logged_in_page": "登录成功",
    "logged_in": "登录成功，欢迎回来",
    "forgot": "忘记登录密码",
    "code_sent": "验证码已发送",
    "reset_page": "新密码已保存",
    "reset": "密码已重置",
}
EN = {
    "register": "sign up",
    "ask_phone": "mobile number",
    "code": "code",
    "registered_page": "you are signed up",
    "registered": "You are signed up!",
    "logout": "log out",
    "logged_out": "Logged out;",
    "login": "log in",
    "method": "How would you like to log in",
    "logged_in_page": "You are logged in",
    "logged_in": "Logged in. Welcome back",
    "forgot": "forgot password",
    "code_sent": "A code has been sent",
    "reset_page": "Your new password is saved",
    "reset": "Your password has been reset",
}


async def register_and_login_again(
    wired: Wired, user: WeChatUser | TelegramUser, phone: str, words: dict[str, str]
) -> None:
    await say_and_wait(user, words["register"], words["ask_phone"])
    await say_and_wait(user, phone, words["code"])
    await say_and_wait(user, wired.sms_code(phone, "register"), "/secure/password")
    url = page_links(user.texts())[-1]
    done = await fill_page(url, PASSWORD, confirm=True)
    assert done.status_code == 200
    assert words["registered_page"] in done.text
    await eventually(lambda: any(words["registered"] in t for t in user.texts()))
    # the same link again, from another browser: refused, nothing changes
    async with httpx.AsyncClient() as other:
        again = await other.get(url)
    assert again.status_code == 403
    # log out, log in by password through a new page link
    await say_and_wait(user, words["logout"], words["logged_out"])
    await say_and_wait(user, words["login"], words["ask_phone"])
    await say_and_wait(user, phone, words["method"])
    await say_and_wait(user, "1", "/secure/password")
    login = await fill_page(page_links(user.texts())[-1], PASSWORD, confirm=False)
    assert words["logged_in_page"] in login.text
    await eventually(lambda: any(words["logged_in"] in t for t in user.texts()))
    # forgot password: an SMS code in the chat, then the page
    await say_and_wait(user, words["forgot"], words["code_sent"])
    await say_and_wait(user, wired.sms_code(phone, "reset_password"), "/secure/password")
    reset = await fill_page(page_links(user.texts())[-1], PASSWORD + "x", confirm=True)
    assert words["reset_page"] in reset.text
    await eventually(lambda: any(words["reset"] in t for t in user.texts()))
    # the password was never a chat message: nothing the user sent contains it
    assert not any(PASSWORD in t for t in user.texts())


async def test_wechat_registration_login_and_reset_go_through_the_page(wired: Wired) -> None:
    await register_and_login_again(wired, WeChatUser(wired, "openid-page"), "13800138101", ZH)


async def test_telegram_registration_login_and_reset_go_through_the_page(wired: Wired) -> None:
    user = TelegramUser(wired, 4711)
    await register_and_login_again(wired, user, "13800138102", EN)  # the fake user speaks English
    # the link is a Telegram URL button, not a text to copy
    calls = wired.telegram.calls_of("sendMessage")
    markups = [str(c.params.get("reply_markup", "")) for c in calls if c.params.get("chat_id") == 4711]
    assert any("/secure/password" in m and "url" in m for m in markups)


async def test_web_chat_registration_goes_through_the_page(wired: Wired) -> None:
    async with httpx.AsyncClient(base_url=wired.base) as web:
        await web.get("/chat")
        seen: list[str] = []

        async def say(text: str) -> None:
            sent = await web.post("/chat/api/send", json={"client_id": f"c{len(seen):08d}x", "text": text})
            assert sent.status_code == 200
            seen.append(text)

        async def texts() -> list[str]:
            got = await web.get("/chat/api/messages", params={"after": 0, "wait": 0})
            return [f"{m['text']} {m['url'] or ''}" for m in got.json()["messages"]]

        async def wait_for(expect: str) -> list[str]:
            for _ in range(300):
                got = await texts()
                if any(expect in t for t in got):
                    return got
                await asyncio.sleep(0.05)
            raise AssertionError(f"{expect!r} never came: {got[-3:]}")

        await say("注册")
        await say("13800138103")
        await wait_for("验证码已发送")
        await say(wired.sms_code("13800138103", "register"))
        url = page_links(await wait_for("/secure/password"))[-1]
        done = await fill_page(url, PASSWORD, confirm=True)
        assert "注册完成" in done.text
        await wait_for("注册成功")


async def test_terminal_reads_the_password_without_echo(wired: Wired) -> None:
    container = wired.container
    out = io.StringIO()
    container.dispatcher.senders["terminal"] = TerminalSender(out)
    prompts: list[str] = []

    def read_secret(prompt: str) -> str:
        prompts.append(prompt)
        return PASSWORD

    # what the user types; the SMS code is read when the chat has sent it
    script: list[Callable[[], str | None]] = [
        lambda: "注册",
        lambda: "13800138104",
        lambda: wired.sms_code("13800138104", "register"),
        lambda: None,
    ]

    def read_line(_out: object) -> str | None:
        line = script.pop(0)()
        return None if line is None else line + "\n"

    page = TerminalPasswordPage(container.password_pages, "tty-user", out, read_secret)
    await terminal_loop(
        container.engine,
        container.dispatcher,
        container.engine.media,
        "tty-user",
        out=out,
        after_replies=page.after_replies,
        read_line=read_line,
    )
    printed = out.getvalue()
    assert prompts
    assert "不显示" in prompts[0]  # getpass-style: the terminal does not echo it
    assert PASSWORD not in printed
    assert "注册成功" in printed
