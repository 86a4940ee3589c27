"""What a user does in the web chat page, shared by the browser tests."""

from __future__ import annotations

from typing import Any

from tests.browser.password_page import use_password_page
from tests.fixtures.served import LiveService


def send(page: Any, text: str) -> None:
    page.fill("#text", text)
    page.click("#send")


def wait_for_bot(page: Any, text: str) -> Any:
    found = page.locator(".msg.bot .bubble", has_text=text).last
    found.wait_for(timeout=20_000)
    return found


def tap(page: Any, label: str) -> None:
    page.locator(".options button", has_text=label).last.click()


def register(page: Any, live: LiveService, phone: str) -> None:
    """Open the chat and register ``phone`` with the SMS code the console provider shows."""
    page.goto(live.url + "/chat")
    wait_for_bot(page, "电子印章办理助手")
    send(page, "注册")
    wait_for_bot(page, "请输入您的手机号码")
    send(page, phone)
    wait_for_bot(page, "验证码已发送")
    send(page, live.sms_code(phone, "register"))
    # The password is set on the secure page, never typed into the chat (privacy).
    use_password_page(page, "seal2024ok", confirm=True, done_text="注册完成")
    wait_for_bot(page, "注册成功")


def apply_with_real_name(page: Any) -> None:
    """Ask for a company seal: the real-name check comes first (its summary shows the ID
    number typed, in full), then the application asks which seals to make."""
    send(page, "我要申请企业公章")
    wait_for_bot(page, "实名认证")
    send(page, "张三")
    wait_for_bot(page, "身份证")
    send(page, "11010519491231002X")
    wait_for_bot(page, "11010519491231002X")
    tap(page, "确认无误")
    wait_for_bot(page, "一家企业需要同时办理")
