"""The support inbox in headless Chromium while a web chat user talks to it: the queue updates
live, staff claim, reply and hand back, and the user carries on at the step they were on."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from bot.app import attach_password_page, build_container
from bot.settings import Settings
from seal_platform.staff import StaffRole
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.browser.password_page import use_password_page
from tests.fixtures.served import free_port, serve_in_thread, service_settings
from tests.support.conftest import create_support_tables, desk_settings
from tests.support.service_rig import STAFF_PASSWORD, add_staff

pytestmark = pytest.mark.browser

PHONE = "13900139000"
ID_NUMBER = "360426199101010071"


def create_support_app(settings: Settings) -> FastAPI:
    """``bot.app.create_app`` with the support desk's settings of the test."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        container = await build_container(settings, support_settings=desk_settings())
        await create_support_tables(container.db)
        desk = container.support
        await add_staff(container, "alice", [StaffRole.SUPPORT])
        app.state.container = container
        container.webchat.attach(app)
        attach_password_page(app, container)
        assert desk.router is not None
        app.include_router(desk.router)
        app.mount("/platform", container.platform_app)
        await container.start()
        try:
            yield
        finally:
            await container.stop()

    app = FastAPI(lifespan=lifespan)

    @app.get("/")
    async def index() -> RedirectResponse:
        return RedirectResponse("/chat")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


@dataclass
class LiveSupport:
    url: str
    app: FastAPI

    def sms_code(self, phone: str, purpose: str) -> str:
        provider = self.app.state.container.platform_services.sms_provider
        return str(provider.last_code(phone, purpose))


@pytest.fixture
def live_support(tmp_path: Path) -> Iterator[LiveSupport]:
    port = free_port()
    app = create_support_app(service_settings(tmp_path, port, event_poll_seconds=0.2))
    with serve_in_thread(app, port) as url:
        yield LiveSupport(url, app)


@pytest.fixture
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def send(page: Any, text: str) -> None:
    page.fill("#text", text)
    page.click("#send")


def wait_for(page: Any, who: str, text: str) -> None:
    page.locator(f".msg.{who} .bubble", has_text=text).last.wait_for(timeout=15_000)


def test_staff_claim_reply_and_hand_back_while_a_web_chat_user_talks(
    live_support: LiveSupport, browser: Any, tmp_path: Path
) -> None:
    user_context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    staff_context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    user = user_context.new_page()
    staff = staff_context.new_page()
    try:
        # The applicant registers and starts real-name verification in the web chat.
        user.goto(live_support.url + "/chat")
        wait_for(user, "bot", "电子印章办理助手")
        send(user, "注册")
        wait_for(user, "bot", "请输入您的手机号码")
        send(user, PHONE)
        wait_for(user, "bot", "验证码已发送到 139****9000")
        send(user, live_support.sms_code(PHONE, "register"))
        use_password_page(user, "seal2024ok", confirm=True, done_text="注册完成")
        wait_for(user, "bot", "注册成功")
        send(user, "实名认证")
        wait_for(user, "bot", "姓名")
        send(user, "张三")
        wait_for(user, "bot", "请输入 18 位居民身份证号码")
        send(user, ID_NUMBER)
        wait_for(user, "bot", "请核对实名信息")

        # Support staff log in; the inbox is empty.
        staff.goto(live_support.url + "/support/")
        staff.fill("#username", "alice")
        staff.fill("#password", STAFF_PASSWORD)
        staff.click("#login")
        staff.locator("#empty").wait_for(timeout=10_000)

        # The user asks for a human: the queue shows it without a reload.
        send(user, "人工")
        wait_for(user, "bot", "已为您转接人工客服")
        row = staff.locator("#queue tr", has_text="web:main:")
        row.wait_for(timeout=15_000)
        assert "等待接入" in row.inner_text()  # the state in words, not its code
        row.locator("a").click()

        # Claim: the user is told, and what they write shows up live for staff.
        staff.locator("#claim").click()
        staff.locator("#hand-back").wait_for(timeout=10_000)
        assert "客服 alice" in staff.locator("#owner").inner_text()
        assert "实名认证" in staff.locator("#answers").locator("..").inner_text()
        wait_for(user, "bot", "人工客服已接入")
        send(user, "我的身份证号码末尾是X还是x？")
        staff.locator("#transcript .who-user", has_text="末尾是X还是x").wait_for(timeout=15_000)

        # A staff reply reaches the web chat as a staff message.
        staff.fill("#reply-text", "大小写都可以，系统会自动识别。")
        staff.locator("#send").click()
        wait_for(user, "staff", "大小写都可以")
        staff.locator("#transcript .who-staff", has_text="大小写都可以").wait_for(timeout=15_000)
        staff.screenshot(path=str(tmp_path / "staff-conversation.png"), full_page=True)

        # Hand back: the bot asks the step the user was on, with the answers given before.
        summaries = user.locator(".msg.bot .bubble", has_text="请核对实名信息")
        shown_before = summaries.count()
        staff.locator("#hand-back").click()
        staff.locator("#take-over").wait_for(timeout=10_000)
        wait_for(user, "bot", "客服已将您转回智能助手")
        summary = summaries.nth(shown_before)  # asked again, not the one from before
        summary.wait_for(timeout=15_000)
        assert "张三" in summary.inner_text()
        assert "360426199101010071" in summary.inner_text()  # the user checks it in full
        user.locator(".options button", has_text="确认").last.click()
        wait_for(user, "bot", "实名认证成功：张三")
        user.screenshot(path=str(tmp_path / "user-chat.png"), full_page=True)
    finally:
        user_context.close()
        staff_context.close()
