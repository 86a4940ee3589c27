"""Both seals as one order in the web chat, in headless Chromium: the summary card shows the
owner every value they typed in full, grouped, with one primary 确认 and one 修改 that opens
the list of answers; after paying, two or three next steps instead of the whole menu; the
order's timeline after staff approved, produced and shipped it. Screenshots of the summary
card, the timeline and the menu after an action are saved under ``var/screenshots/``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

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

PHONE = "13600136000"
LEGAL_REP_ID = "360426199101010071"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


def staff(live: LiveService, tmp_path: Path) -> httpx.Client:
    """The platform's staff API over HTTP, as the console's first admin (password on disk)."""
    password = (tmp_path / "var" / "platform" / "admin-password.txt").read_text().strip()
    key = live.container.settings.platform_service_key.get_secret_value()
    client = httpx.Client(
        base_url=live.url + "/platform", headers={"Authorization": f"Bearer {key}"}, timeout=20
    )
    login = client.post("/v1/staff/sessions", json={"username": "admin", "password": password})
    assert login.status_code == 201, login.text
    client.headers["X-Staff-Token"] = login.json()["token"]
    return client


def test_bundle_application_summary_card_timeline_and_next_steps(
    live_service: LiveService, browser_page: Any, tmp_path: Path
) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = browser_page
    register(page, live_service, PHONE)
    # the operator (default settings: its service name), then the page's words, all in Chinese
    assert page.locator("header").inner_text() == "电子印章服务 · 电子印章办理助手"

    apply_with_real_name(page)  # the real-name summary shows the ID number in full
    tap(page, "企业公章 + 法人章")
    wait_for_bot(page, "第 2/")
    for prompt, answer in (
        ("统一社会信用代码", "北京示例科技有限公司"),
        ("法定代表人姓名", "91110000600037341L"),
        ("法定代表人的身份证号码", "李四"),
        ("联系人手机号", LEGAL_REP_ID),
    ):
        send(page, answer)
        wait_for_bot(page, prompt)
    tap(page, f"使用 {PHONE}")  # the owner reads their own phone; stored labels are masked
    wait_for_bot(page, "营业执照副本扫描件")
    page.set_input_files("#file", str(png(tmp_path / "licence.png", (190, 20, 20))))
    wait_for_bot(page, "身份证人像面")
    answer_from_the_id_scans_to_the_address(page, tmp_path, "13912345678")

    card = wait_for_bot(page, "请核对申请信息")
    text = card.inner_text()
    for shown in (
        LEGAL_REP_ID,
        "13912345678",
        PHONE,
        "【企业信息】",
        "【法定代表人】",
        "【材料】",
        "【邮寄】",
    ):
        assert shown in text, shown
    buttons = card.locator(".options button")
    assert buttons.count() <= 4  # 确认, 修改, back, cancel: not one button per answer
    assert card.locator(".options button.primary").inner_text() == "确认无误，提交"
    page.screenshot(path=str(SCREENSHOTS / "summary-card.png"), full_page=False)

    tap(page, "修改")
    fields = wait_for_bot(page, "请选择要修改的内容")
    assert fields.locator(".options button", has_text="收件人电话").count() == 1
    fields.locator(".options button", has_text="收件人电话").click()
    wait_for_bot(page, "当前填写的是：13912345678")  # the edit prompt shows the current value
    send(page, "13912345679")
    wait_for_bot(page, "13912345679")
    tap(page, "确认无误")
    wait_for_bot(page, "申请已提交")
    pay_link = page.locator(".msg.bot a.linkbtn[href*='/pay/']").last
    pay_link.wait_for(timeout=20_000)
    page.locator(".msg.bot img").last.wait_for(timeout=20_000)  # the QR code

    payer = page.context.new_page()
    payer.goto(pay_link.get_attribute("href"))
    payer.click("#pay")
    payer.wait_for_load_state()
    payer.close()
    wait_for_bot(page, "已收到订单")
    # after the action: the next steps, not the whole menu
    after = wait_for_bot(page, "接下来您可能需要")
    labels = after.locator(".options button").all_inner_texts()
    assert "我的订单" in labels
    assert len(labels) <= 4
    page.screenshot(path=str(SCREENSHOTS / "menu-after-action.png"), full_page=False)

    desk = staff(live_service, tmp_path)
    try:
        (order,) = [o for o in desk.get("/v1/staff/orders").json() if o["status"] == "under_review"]
        for step, body in (("approve", None), ("produce", None), ("ship", {"waybill": "SF1234567890123"})):
            done = desk.post(f"/v1/staff/orders/{order['id']}/{step}", json=body or {})
            assert done.status_code == 200, done.text
    finally:
        desk.close()
    wait_for_bot(page, "SF1234567890123")
    send(page, "我的订单")
    wait_for_bot(page, "请选择要查看的订单")
    tap(page, "已寄出")
    timeline = wait_for_bot(page, "办理进度：")
    text = timeline.inner_text()
    for step in (
        "已提交，待支付",
        "已支付",
        "审核通过",
        "印章已制作完成",
        "运单 SF1234567890123",
        "○ 已签收",
    ):
        assert step in text, step
    page.locator(".msg.bot a.linkbtn", has_text="打开链接").last.wait_for(timeout=20_000)  # tracking
    page.screenshot(path=str(SCREENSHOTS / "order-timeline.png"), full_page=False)
