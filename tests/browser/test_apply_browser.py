"""The company seal application and its payment in the web chat, in headless Chromium: scans
through the page's file input, the payment link opened in a second page and paid on the sandbox
page, and the "paid" push appearing in the chat by itself."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from reportlab.pdfgen import canvas

from tests.browser.chat_page import apply_with_real_name, register, send, tap, wait_for_bot
from tests.fixtures.served import LiveService

pytestmark = pytest.mark.browser

PHONE = "13700137000"


def scans(folder: Path) -> tuple[Path, Path]:
    licence = folder / "licence.png"
    out = io.BytesIO()
    Image.new("RGB", (160, 100), (190, 20, 20)).save(out, format="PNG")
    licence.write_bytes(out.getvalue())
    form = folder / "impression-form.pdf"
    page = canvas.Canvas(str(form))
    page.drawString(72, 720, "stamped impression form")
    page.showPage()
    page.save()
    return licence, form


def test_company_seal_application_and_payment_in_the_web_chat(
    live_service: LiveService, browser_page: Any, tmp_path: Path
) -> None:
    licence, form = scans(tmp_path)
    page = browser_page
    register(page, live_service, PHONE)

    apply_with_real_name(page)
    tap(page, "只办企业公章")
    wait_for_bot(page, "企业名称")
    for prompt, answer in (
        ("统一社会信用代码", "北京示例科技有限公司"),
        ("法定代表人姓名", "91110000600037341L"),
        ("法定代表人的身份证号码", "李四"),
        ("联系人手机号", "360426199101010071"),
    ):
        send(page, answer)
        wait_for_bot(page, prompt)
    tap(page, f"使用 {PHONE}")
    wait_for_bot(page, "营业执照副本扫描件")
    page.set_input_files("#file", str(licence))
    wait_for_bot(page, "证书有效期")
    tap(page, "1 年 ¥300.00")
    wait_for_bot(page, "盖章后的企业公章印模采集表")
    page.locator(".msg.bot a[download]", has_text="impression-form").last.wait_for(timeout=20_000)
    page.set_input_files("#file", str(form))
    wait_for_bot(page, "收件人姓名")
    for prompt, answer in (("收件人手机号", "王五"),):
        send(page, answer)
        wait_for_bot(page, prompt)
    tap(page, f"使用 {PHONE}")
    wait_for_bot(page, "收件地区")
    send(page, "广东省 广州市 天河区")
    wait_for_bot(page, "详细地址")
    send(page, "天河路 100 号 20 楼")
    wait_for_bot(page, "请核对申请信息")
    tap(page, "确认无误")
    wait_for_bot(page, "申请已提交")
    pay_link = page.locator(".msg.bot a[href*='/pay/']").last
    pay_link.wait_for(timeout=20_000)
    page.locator(".msg.bot img").last.wait_for(timeout=20_000)  # the QR code
    page.screenshot(path=str(tmp_path / "awaiting-payment.png"), full_page=True)

    payer = page.context.new_page()
    payer.goto(pay_link.get_attribute("href"))
    payer.click("#pay")
    payer.wait_for_load_state()
    payer.close()

    # nobody asks: the platform's event brings the push into the open chat
    wait_for_bot(page, "已收到订单")
    wait_for_bot(page, "已进入审核")
    page.screenshot(path=str(tmp_path / "paid.png"), full_page=True)
