"""The whole enterprise + legal-representative application in the web chat, in headless
Chromium, as issue #13's Done-when asks: tapping 返回上一步 or 取消 on a question already
answered only says the button is old (nothing is undone, nothing is asked to be cancelled); the
current 取消 asks first, keeps what was typed as a draft, and the draft continues at the question
the user was on; a reload shows the whole history, the user's own messages and uploads
included (as stored: masked where needed); the summary shows the values in full and is
confirmed; after 退出登录 and a reload nothing of it is shown or served in that browser.
Screenshots of the notice, of the menu offering the draft and of the reloaded history are
saved under ``var/screenshots/``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.engine.secrets_box import mask
from tests.browser.chat_page import (
    answer_from_the_id_scans_to_the_address,
    apply_with_real_name,
    png,
    register,
    send,
    tap,
    wait_for_bot,
)
from tests.fixtures.served import LiveService

pytestmark = pytest.mark.browser

PHONE = "13600136001"
LEGAL_REP_ID = "360426199101010071"
RECIPIENT_PHONE = "13912345678"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
OLD_BUTTON = "这个按钮已过期"


def bubbles(page: Any, text: str) -> Any:
    return page.locator(".msg.bot .bubble", has_text=text)


def mine(page: Any) -> list[str]:
    return [t.strip() for t in page.locator(".msg.me .bubble").all_inner_texts()]


def test_old_buttons_draft_reload_with_whole_history_and_confirmation_with_full_values(
    live_service: LiveService, browser_page: Any, tmp_path: Path
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
    send(page, LEGAL_REP_ID)
    wait_for_bot(page, "联系人手机号")
    tap(page, f"使用 {PHONE}")
    wait_for_bot(page, "营业执照副本扫描件")
    page.set_input_files("#file", str(png(tmp_path / "licence.png", (190, 20, 20))))
    wait_for_bot(page, "身份证人像面")

    # A reload shows everything: the bot's messages and the user's own, uploads included.
    bot_before = page.locator(".msg.bot .bubble").count()
    page.reload()
    wait_for_bot(page, "身份证人像面")
    expect(page.locator(".msg.bot .bubble")).to_have_count(bot_before, timeout=20_000)
    typed = mine(page)
    for shown in (
        "注册",
        "我要申请企业公章",
        "企业公章 + 法人章",  # a tapped button, as its label
        "北京示例科技有限公司",
        "91110000600037341L",
        "确认取消",
        "李四",
    ):
        assert any(shown in t for t in typed), (shown, typed)
    assert LEGAL_REP_ID not in " ".join(typed)  # stored masked, shown as stored
    # the suggestion read in full when it was live is kept masked in the history
    assert page.locator(".options button", has_text=f"使用 {mask(PHONE)}").count() == 1
    assert page.locator(".options button", has_text=f"使用 {PHONE}").count() == 0
    assert live_service.sms_code(PHONE, "register") not in " ".join(typed)  # never stored
    # in order: each answer right after the question it answers
    order = [
        t.strip()
        for t in page.locator(".msg .bubble").all_inner_texts()
        if t.strip() in ("北京示例科技有限公司", "91110000600037341L", "李四")
        or t.startswith(("请输入统一社会信用代码", "请输入法定代表人姓名"))
    ]
    assert order.index("北京示例科技有限公司") < order.index("91110000600037341L") < order.index("李四")
    upload = page.locator(".msg.me .bubble img").last
    upload.wait_for(timeout=20_000)
    src = str(upload.get_attribute("src"))
    assert page.evaluate("u => fetch(u).then(r => r.status)", src) == 200
    assert page.evaluate("u => document.querySelector(`img[src='${u}']`).naturalWidth", src) == 160
    page.screenshot(path=str(SCREENSHOTS / "history-after-reload.png"), full_page=False)

    # The application goes on after the reload, and the summary shows what was typed in full.
    answer_from_the_id_scans_to_the_address(page, tmp_path, RECIPIENT_PHONE)
    card = wait_for_bot(page, "请核对申请信息")
    text = card.inner_text()
    for shown in ("北京示例科技有限公司", "91110000600037341L", "李四", LEGAL_REP_ID, PHONE, RECIPIENT_PHONE):
        assert shown in text, shown
    tap(page, "确认无误")
    wait_for_bot(page, "申请已提交")

    # 退出登录: this browser gets an empty chat; the upload's link no longer opens.
    send(page, "退出登录")
    wait_for_bot(page, "已退出登录")
    page.reload()
    wait_for_bot(page, "电子印章办理助手")
    assert "北京示例科技有限公司" not in " ".join(mine(page))
    assert page.locator(".msg.me img").count() == 0
    assert page.evaluate("u => fetch(u).then(r => r.status)", src) == 404
