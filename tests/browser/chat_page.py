"""What a user does in the web chat page, shared by the browser tests."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from PIL import Image
from reportlab.pdfgen import canvas

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


def png(path: Path, colour: tuple[int, int, int]) -> Path:
    out = io.BytesIO()
    Image.new("RGB", (160, 100), colour).save(out, format="PNG")
    path.write_bytes(out.getvalue())
    return path


def pdf(path: Path) -> Path:
    page = canvas.Canvas(str(path))
    page.drawString(72, 720, "stamped impression form")
    page.showPage()
    page.save()
    return path


def answer_from_the_id_scans_to_the_address(page: Any, tmp_path: Path, recipient_phone: str) -> None:
    """At the question for the ID card's portrait side (the licence is in): both sides of the
    ID card, a one-year certificate, both stamped impression forms and the mailing address of
    王五 at ``recipient_phone``; the summary card comes next."""
    page.set_input_files("#file", str(png(tmp_path / "front.png", (20, 190, 20))))
    wait_for_bot(page, "国徽面")
    page.set_input_files("#file", str(png(tmp_path / "back.png", (20, 20, 190))))
    wait_for_bot(page, "证书有效期")
    tap(page, "1 年")
    wait_for_bot(page, "盖章后的企业公章印模采集表")
    page.set_input_files("#file", str(pdf(tmp_path / "form-enterprise.pdf")))
    wait_for_bot(page, "法人章印模采集表")
    page.set_input_files("#file", str(pdf(tmp_path / "form-personal.pdf")))
    wait_for_bot(page, "收件人姓名")
    send(page, "王五")
    wait_for_bot(page, "收件人手机号")
    send(page, recipient_phone)
    wait_for_bot(page, "收件地区")
    send(page, "广东省 广州市 天河区")
    wait_for_bot(page, "详细地址")
    send(page, "天河路 100 号 20 楼")
