"""Old buttons and drafts in the web chat, in headless Chromium: tapping 返回上一步 or 取消 on a
question already answered only says the button is old (nothing is undone, nothing is asked to
be cancelled); the current 取消 asks first, keeps what was typed as a draft, and the draft
continues at the question the user was on. Screenshots of the notice and of the menu offering
the draft are saved under ``var/screenshots/``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser.chat_page import apply_with_real_name, register, send, tap, wait_for_bot
from tests.browser.conftest import LiveService

pytestmark = pytest.mark.browser

PHONE = "13600136001"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
OLD_BUTTON = "这个按钮已过期"


def bubbles(page: Any, text: str) -> Any:
    return page.locator(".msg.bot .bubble", has_text=text)


def test_old_back_and_cancel_only_notify_and_a_cancelled_application_resumes_from_its_draft(
    live_service: LiveService, browser_page: Any
) -> None:
    from playwright.sync_api import expect

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = browser_page
    register(page, live_service, PHONE)
    apply_with_real_name(page)
    tap(page, "企业公章 + 法人章")
    company_question = wait_for_bot(page, "第 2/")
    send(page, "北京示例科技有限公司")
    wait_for_bot(page, "统一社会信用代码")

    # The company question's 返回上一步, tapped after it was answered: a notice, the current
    # question again, and the company name is not cleared (the next answer is the credit code).
    company_question.locator(".options button", has_text="返回上一步").click()
    wait_for_bot(page, OLD_BUTTON)
    expect(bubbles(page, "统一社会信用代码")).to_have_count(2, timeout=20_000)
    page.screenshot(path=str(SCREENSHOTS / "old-button-notice.png"), full_page=False)

    # Its 取消: a notice again, never the "really cancel?" question.
    company_question.locator(".options button", has_text="取消").click()
    expect(bubbles(page, OLD_BUTTON)).to_have_count(2, timeout=20_000)
    expect(bubbles(page, "统一社会信用代码")).to_have_count(3, timeout=20_000)
    assert bubbles(page, "确定要取消").count() == 0

    send(page, "91110000600037341L")
    wait_for_bot(page, "法定代表人姓名")

    # The current 取消 asks first, then keeps the answers as a draft offered in the menu.
    tap(page, "取消")
    wait_for_bot(page, "确定要取消")
    tap(page, "确认取消")
    wait_for_bot(page, "保存为草稿")
    draft = page.locator(".options button", has_text="从草稿继续").last
    draft.wait_for(timeout=20_000)
    page.screenshot(path=str(SCREENSHOTS / "draft-in-menu.png"), full_page=False)

    draft.click()
    wait_for_bot(page, "欢迎回来")
    expect(bubbles(page, "法定代表人姓名")).to_have_count(2, timeout=20_000)
    send(page, "李四")
    wait_for_bot(page, "法定代表人的身份证号码")  # the answers before the draft were kept
