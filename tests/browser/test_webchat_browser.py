"""The web chat in headless Chromium, on a phone-sized screen: registration, then login."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.password_page import use_password_page
from tests.fixtures.served import LiveService

pytestmark = pytest.mark.browser

PHONE = "13900139000"


def send(page: Any, text: str) -> None:
    page.fill("#text", text)
    page.click("#send")


def wait_for_bot(page: Any, text: str) -> None:
    page.locator(".msg.bot .bubble", has_text=text).last.wait_for(timeout=15_000)


def test_registration_and_login_in_the_web_chat(
    live_service: LiveService, browser_page: Any, tmp_path: Any
) -> None:
    page = browser_page
    page.goto(live_service.url + "/chat")
    wait_for_bot(page, "电子印章办理助手")
    page.locator(".options button", has_text="注册账号").last.click()
    wait_for_bot(page, "请输入您的手机号码")
    send(page, PHONE)
    wait_for_bot(page, "验证码已发送到 139****9000")
    send(page, live_service.sms_code(PHONE, "register"))
    wait_for_bot(page, "在安全页面上设置登录密码")
    use_password_page(page, "seal2024ok", confirm=True, done_text="注册完成")
    wait_for_bot(page, "注册成功")  # the chat continued by itself
    page.screenshot(path=str(tmp_path / "registered.png"), full_page=True)

    # the next step the bot offers is real-name verification, as a button
    page.locator(".options button", has_text="实名认证").last.wait_for(timeout=15_000)
    send(page, "退出登录")
    wait_for_bot(page, "已退出登录")
    send(page, "登录")
    wait_for_bot(page, "请输入您的手机号码")
    send(page, PHONE)
    page.locator(".options button", has_text="手机号 + 密码").last.click()
    wait_for_bot(page, "在安全页面上输入登录密码")
    use_password_page(page, "seal2024ok", confirm=False, done_text="登录成功")
    wait_for_bot(page, "登录成功")
    # the page keeps the whole conversation after a reload (it is read back from the server)
    page.reload()
    wait_for_bot(page, "登录成功")


OPERATOR = "广州示例印章服务有限公司"


@pytest.fixture
def operator_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLATFORM_OPERATOR_COMPANY", OPERATOR)


def test_the_header_names_the_operator_in_the_pages_language(
    operator_settings: None, live_service: LiveService, browser_page: Any
) -> None:
    page = browser_page
    page.goto(live_service.url + "/chat")
    wait_for_bot(page, "电子印章办理助手")
    assert page.locator("header").inner_text() == f"{OPERATOR} · 电子印章办理助手"  # no English in it
    assert page.title() == f"{OPERATOR} · 电子印章办理助手"
    english = page.context.browser.new_context(locale="en-US").new_page()
    try:
        english.goto(live_service.url + "/chat")
        english.locator(".msg.bot .bubble").first.wait_for(timeout=15_000)
        assert english.locator("header").inner_text() == f"{OPERATOR} · E-seal assistant"
    finally:
        english.context.close()
