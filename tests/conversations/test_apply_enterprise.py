"""The enterprise seal application (企业印章申领) as a chat, through the real engine, platform
client and embedded platform: from "申请企业公章" to a paid order under review.

The helpers at the top (a verified applicant, scans made with Pillow and reportlab, paying on
the sandbox page, staff actions) are shared by the other application, payment, order and
invoice transcripts of this directory.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import httpx
from PIL import Image
from reportlab.pdfgen import canvas
from sqlalchemy import func, select

from bot.engine.messages import Inbound, Reply, ReplyKind
from bot.engine.secrets_box import mask
from platform_client.orders import Order
from seal_platform.orders import Order as OrderRow
from seal_platform.staff import StaffRole
from tests.conversations.conftest import Service
from tests.conversations.test_accounts import register
from tests.fixtures.staff import add_staff

PHONE = "13800138000"
AGENT_ID = "11010519491231002X"
USCC = "91110000600037341L"
USCC_TYPO = "91110000600037341M"  # the check character of USCC is L
LEGAL_REP_ID = "360426199101010071"
COMPANY = "北京示例科技有限公司"
OTHER_COMPANY = "上海示例科技有限公司"  # a second company: one seal of each kind per company
OTHER_USCC = "913100006000373412"
WAYBILL = "SF1234567890123"


def joined(texts: list[str]) -> str:
    return "\n".join(texts)


# ---- files as a scanner or phone would send them -------------------------------------------------


def png_scan(size: tuple[int, int] = (120, 80), colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue()


def pdf_scan(text: str = "stamped impression form") -> bytes:
    out = io.BytesIO()
    page = canvas.Canvas(out)
    page.drawString(72, 720, text)
    page.showPage()
    page.save()
    return out.getvalue()


def gif_image() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (20, 20), (0, 0, 255)).save(out, format="GIF")
    return out.getvalue()


# ---- the applicant ----------------------------------------------------------------------------------


async def verified_applicant(
    service: Service, *, user: str = "u1", phone: str = PHONE, lang: str = "zh"
) -> None:
    """Registered and real-name verified through the chat; then the chat speaks ``lang``."""
    chat = service.chat
    await register(service, phone=phone, user=user)
    await chat.say("实名认证", user=user)
    await chat.say("张三", user=user)
    await chat.say(AGENT_ID, user=user)
    done = await chat.tap("确认无误", user=user)
    assert "实名认证成功" in joined(done)
    if lang == "en":
        await chat.say("english", user=user)


def replies_since(service: Service, mark: int, user: str = "u1") -> list[Reply]:
    return [m.reply for m in service.chat.sender.sent[mark:] if m.key.user_id == user]


def mark(service: Service) -> int:
    return len(service.chat.sender.sent)


def texts_of(replies: list[Reply]) -> str:
    return "\n".join(r.text for r in replies)


def pushed_option(service: Service, since: int, label: str, user: str = "u1") -> str:
    """The token of an option offered by a push (which the harness does not track as "last")."""
    for reply in replies_since(service, since, user):
        for option in reply.options:
            if label in option.label:
                return option.token
    raise AssertionError(f"no pushed option {label!r}")


def pushed_labels(service: Service, since: int, user: str = "u1") -> list[str]:
    return [o.label for r in replies_since(service, since, user) for o in r.options]


def last_link(service: Service, user: str = "u1") -> str:
    links = [r.url for r in service.chat.sender.replies_for(user) if r.kind is ReplyKind.LINK and r.url]
    assert links, "no link was sent"
    return str(links[-1])


async def account_token(service: Service, user: str = "u1") -> str:
    """The platform token the chat holds for its account (read from the conversation state)."""
    snapshot = await service.container.engine.store.load(service.chat.key(user), None)
    assert snapshot.state is not None
    state = service.container.engine.codec.load(snapshot.state)
    assert state.session is not None
    return state.session.token


async def orders_of(service: Service, user: str = "u1") -> list[Order]:
    return await service.container.platform.orders.list_orders(await account_token(service, user))


async def count_orders(service: Service) -> int:
    async with service.container.platform_services.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(OrderRow)) or 0)


async def pay_on_sandbox_page(service: Service, user: str = "u1") -> None:
    """Press "pay" on the sandbox page the link points to, as the payer's browser would."""
    url = last_link(service, user)
    path = url.split("/platform", 1)[1]
    transport = httpx.ASGITransport(app=service.container.platform_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://platform.embedded") as web:
        page = await web.get(path)
        assert page.status_code == 200
        pressed = await web.post(path)
        assert pressed.status_code == 303, pressed.text


@dataclass
class StaffDesk:
    """Platform staff acting through the staff API, as the console does."""

    service: Service
    token: str

    @property
    def api(self) -> Any:
        return self.service.container.platform.staff

    async def approve(self, order_id: str) -> None:
        await self.api.approve(self.token, order_id)

    async def reject(self, order_id: str, reason: str) -> None:
        await self.api.reject(self.token, order_id, reason)

    async def produce(self, order_id: str) -> None:
        await self.api.produce(self.token, order_id)

    async def ship(self, order_id: str, waybill: str = WAYBILL) -> None:
        await self.api.ship(self.token, order_id, waybill)

    async def issue_invoice(self, invoice_id: str) -> None:
        await self.api.issue_invoice(self.token, invoice_id)


async def staff_desk(service: Service) -> StaffDesk:
    await add_staff(
        service.container.platform_services, "desk", [StaffRole.ADMIN], password="desk-password-1"
    )
    login = await service.container.platform.staff.login("desk", "desk-password-1")
    return StaffDesk(service, login.token)


# ---- the application up to the payment link --------------------------------------------------------


async def apply_enterprise_until_payment(
    service: Service, *, user: str = "u1", english: bool = False, company: str = COMPANY, uscc: str = USCC
) -> list[str]:
    """Answer every step of the company seal application; returns what the bot said on submit."""
    chat = service.chat
    await chat.say("apply for enterprise seal" if english else "我要申请企业公章", user=user)
    await chat.tap("The company seal only" if english else "只办企业公章", user=user)
    fresh = "Enter new details" if english else "填写新的信息"
    if any(o.label == fresh for o in chat.options(user)):  # an earlier order's data is on file
        await chat.tap(fresh, user=user)
    await chat.say(company, user=user)
    await chat.say(uscc, user=user)
    await chat.say("李四", user=user)
    await chat.say(LEGAL_REP_ID, user=user)
    await chat.tap(PHONE, user=user)
    await chat.upload(png_scan(), "licence.png", user=user)
    forms = await chat.tap("1 yr" if english else "1 年", user=user)
    assert ("impression form" if english else "印模采集表") in joined(forms)
    await chat.upload(pdf_scan(), "form.pdf", user=user)
    await chat.say("王五", user=user)
    await chat.tap(PHONE, user=user)
    await chat.say("广东省 广州市 天河区", user=user)
    summary = await chat.say("天河路 100 号 20 楼", user=user)
    assert company in joined(summary)
    return await chat.tap("All correct" if english else "确认无误", user=user)


# ---- the tests ----------------------------------------------------------------------------------------


async def test_company_seal_application_in_chinese_from_intent_to_payment_and_review(
    service: Service,
) -> None:
    await verified_applicant(service)
    chat = service.chat
    start = await chat.say("我要刻章")
    assert "企业公章 + 法人章（一个订单）" in [o.label for o in chat.options()]
    assert "一家企业需要同时办理企业公章和法定代表人章" in joined(start)
    await chat.tap("只办企业公章")
    await chat.say(COMPANY)
    await chat.say(USCC)
    await chat.say("李四")
    phone_step = await chat.say(LEGAL_REP_ID)
    assert "联系人手机号" in joined(phone_step)
    # the account's phone, one tap: the owner reads it in full, the button carries a reference
    # only, and the label kept in the outbox (transcripts, staff views, history) is masked
    full = f"使用 {PHONE}"
    assert full in [o.label for o in chat.options()]
    assert not any(PHONE in o.token for o in chat.options())
    stored = await service.container.store.delivered(chat.key("u1"), 0, 1000)
    stored_labels = [o.label for m in stored for o in m.reply.options]
    assert f"使用 {mask(PHONE)}" in stored_labels
    assert not any(PHONE in label for label in stored_labels)
    licence_step = await chat.tap(full)
    assert "营业执照" in joined(licence_step)
    assert "10 MB" in joined(licence_step)
    years_step = await chat.upload(png_scan(), "licence.png")
    assert "文件检查通过" in joined(years_step)
    assert [o.label for o in chat.options()][:4] == [
        "1 年 ¥300.00",
        "2 年 ¥600.00",
        "3 年 ¥900.00",
        "5 年 ¥1500.00",
    ]

    before = mark(service)
    await chat.tap("2 年 ¥600.00")
    sent = replies_since(service, before)
    forms = [r for r in sent if r.kind is ReplyKind.FILE]
    assert len(forms) == 1
    assert forms[0].file is not None
    assert forms[0].file.content_type == "application/pdf"
    assert "印模采集表" in forms[0].text
    form_pdf = await service.container.engine.media.get(forms[0].file.media_id)
    assert form_pdf.startswith(b"%PDF-")
    assert "盖章后的企业公章印模采集表" in texts_of(sent)
    drafts = await orders_of(service)
    assert [(o.type, o.status, o.years) for o in drafts] == [("enterprise_seal", "draft", 2)]

    await chat.upload(pdf_scan(), "form.pdf")
    await chat.say("王五")
    await chat.tap(PHONE)
    await chat.say("广东省广州市天河区")
    summary = joined(await chat.say("天河路 100 号 20 楼"))
    assert COMPANY in summary
    assert USCC in summary
    assert "2 年 ¥600.00" in summary
    assert LEGAL_REP_ID in summary  # the owner checks the ID number in full (masked when stored)
    assert "广东省 广州市 天河区" in summary

    before = mark(service)
    submitted = await chat.tap("确认无误")
    assert "申请已提交" in joined(submitted)
    assert "¥600.00" in joined(submitted)
    sent = replies_since(service, before)
    link = [r for r in sent if r.kind is ReplyKind.LINK]
    qr = [r for r in sent if r.kind is ReplyKind.IMAGE]
    assert len(link) == 1
    assert link[0].url is not None
    assert "/platform/pay/" in link[0].url
    assert len(qr) == 1
    assert qr[0].file is not None
    assert qr[0].file.content_type == "image/png"
    qr_png = await service.container.engine.media.get(qr[0].file.media_id)
    assert Image.open(io.BytesIO(qr_png)).size[0] > 100
    assert "我已支付" in [o.label for o in chat.options()]
    (order,) = await orders_of(service)
    assert order.status == "awaiting_payment"
    assert order.mailing_address is not None
    assert order.mailing_address["city"] == "广州市"
    assert set(order.documents) == {"business_licence", "impression_form_enterprise"}

    not_yet = await chat.tap("我已支付")
    assert "还没有收到这笔付款" in joined(not_yet)

    await pay_on_sandbox_page(service)
    before = mark(service)
    await service.settle()
    pushed = texts_of(replies_since(service, before))
    assert "已收到订单" in pushed
    assert "¥600.00" in pushed
    assert "已进入审核" in pushed
    # right after payment, the legal representative's seal is offered with the data known
    assert "申请法人章" in pushed_labels(service, before)


async def test_the_legal_representative_seal_is_offered_with_the_company_data_filled_in(
    service: Service,
) -> None:
    await verified_applicant(service)
    chat = service.chat
    await apply_enterprise_until_payment(service)
    await pay_on_sandbox_page(service)
    before = mark(service)
    await service.settle()
    personal = await chat.tap("申请法人章", token=pushed_option(service, before, "申请法人章"))
    # company, credit code, legal representative and phone are known: the ID card is next
    assert "身份证人像面" in joined(personal)
    await chat.upload(png_scan(colour=(10, 10, 10)), "front.png")
    await chat.upload(png_scan(colour=(20, 20, 20)), "back.png")
    forms = await chat.tap("1 年 ¥200.00")
    assert "盖章后的法人章印模采集表" in joined(forms)
    summary = await chat.upload(pdf_scan("personal form"), "personal.pdf")
    assert COMPANY in joined(summary)
    assert "王五" in joined(summary)
    submitted = await chat.tap("确认无误")
    assert "法人章" in joined(submitted)
    assert "¥200.00" in joined(submitted)
    types = sorted(o.type for o in await orders_of(service))
    assert types == ["enterprise_seal", "personal_seal"]


async def test_both_seals_as_one_order_ask_for_licence_and_id_card_and_send_two_forms(
    service: Service,
) -> None:
    await verified_applicant(service)
    chat = service.chat
    await chat.say("办理企业印章")
    await chat.tap("企业公章 + 法人章（一个订单）")
    for answer in (COMPANY, USCC, "李四", LEGAL_REP_ID, PHONE):
        await chat.say(answer)
    await chat.upload(png_scan(), "licence.png")
    await chat.upload(png_scan(colour=(1, 2, 3)), "front.png")
    await chat.upload(png_scan(colour=(4, 5, 6)), "back.png")
    assert "1 年 ¥500.00" in [o.label for o in chat.options()]
    before = mark(service)
    await chat.tap("1 年 ¥500.00")
    files = [r for r in replies_since(service, before) if r.kind is ReplyKind.FILE]
    assert len(files) == 2
    await chat.upload(pdf_scan("enterprise"), "e.pdf")
    await chat.upload(pdf_scan("personal"), "p.pdf")
    for answer in ("王五", PHONE, "北京市 朝阳区", "建国路 1 号"):
        await chat.say(answer)
    submitted = await chat.tap("确认无误")
    assert "¥500.00" in joined(submitted)
    (order,) = await orders_of(service)
    assert order.type == "bundle"
    assert len(order.documents) == 5
    assert order.mailing_address is not None
    assert order.mailing_address["city"] == "北京市"
    await pay_on_sandbox_page(service)
    before = mark(service)
    await service.settle()
    after = texts_of(replies_since(service, before))
    # a bundle made both seals: the other one is not offered again
    assert "已收到订单" in after
    assert "现在就用刚才填写的信息申请法人章" not in after


async def test_company_seal_application_in_english(service: Service) -> None:
    await verified_applicant(service, lang="en")
    submitted = await apply_enterprise_until_payment(service, english=True)
    assert "Application submitted" in joined(submitted)
    assert "¥300.00" in joined(submitted)
    assert "I have paid" in [o.label for o in service.chat.options()]
    await pay_on_sandbox_page(service)
    before = mark(service)
    await service.settle()
    pushed = texts_of(replies_since(service, before))
    assert "Payment of ¥300.00" in pushed
    assert "under review" in pushed


async def test_bad_answers_are_explained_with_an_example_and_asked_again(service: Service) -> None:
    await verified_applicant(service)
    chat = service.chat
    await chat.say("申请企业公章")
    await chat.tap("只办企业公章")
    short = await chat.say("A")
    assert "北京示例科技有限公司" in joined(short)
    assert "企业名称" in joined(short)
    await chat.say(COMPANY)
    typo = await chat.say(USCC_TYPO)
    assert "校验码" in joined(typo)
    assert "统一社会信用代码" in joined(typo)
    await chat.say(USCC)
    digits = await chat.say("李4")
    assert "姓名" in joined(digits)
    await chat.say("李四")
    wrong_id = await chat.say("360426199101010072")
    assert "校验位" in joined(wrong_id)
    assert "身份证号码" in joined(wrong_id)
    await chat.say(LEGAL_REP_ID)
    bad_phone = await chat.say("12345")
    assert "13800138000" in joined(bad_phone)
    await chat.say(PHONE)

    # a GIF called .png is refused by its content; so is a text file; the step is asked again
    gif = await chat.upload(gif_image(), "licence.png", content_type="image/png")
    assert "文件格式不支持" in joined(gif)
    assert "营业执照" in joined(gif)
    text = await chat.upload(b"just some text, not a scan", "licence.pdf", content_type="application/pdf")
    assert "文件格式不支持" in joined(text)
    # over the 10 MB limit
    huge = await chat.upload(b"\x89PNG\r\n\x1a\n" + b"\0" * (10 * 1024 * 1024), "big.png")
    assert "文件太大" in joined(huge)
    assert "10 MB" in joined(huge)
    # PNG magic but broken inside: the platform refuses it, and the refusal is explained
    broken = await chat.upload(b"\x89PNG\r\n\x1a\n" + b"garbage" * 50, "broken.png")
    assert "图片已损坏" in joined(broken)
    assert "营业执照" in joined(broken)
    years = await chat.upload(png_scan(), "licence.png")
    assert "证书有效期" in joined(years)

    await chat.tap("1 年")
    await chat.upload(pdf_scan(), "form.pdf")
    await chat.say("王五")
    await chat.say(PHONE)
    region = await chat.say("某个地方")
    assert "广东省 广州市 天河区" in joined(region)
    await chat.say("广东省 广州市 天河区")
    street = await chat.say("1号")
    assert "天河路 100 号 20 楼" in joined(street)


async def test_a_redelivered_submission_creates_one_order(service: Service) -> None:
    await verified_applicant(service)
    chat = service.chat
    await chat.say("申请企业公章")
    await chat.tap("只办企业公章")
    for answer in (COMPANY, USCC, "李四", LEGAL_REP_ID, PHONE):
        await chat.say(answer)
    await chat.upload(png_scan(), "licence.png")
    await chat.tap("1 年")
    await chat.upload(pdf_scan(), "form.pdf")
    for answer in ("王五", PHONE, "广东省 广州市 天河区", "天河路 100 号 20 楼"):
        await chat.say(answer)
    confirm = chat.option("确认无误").token
    first = await chat.tap("确认无误", token=confirm)
    assert "申请已提交" in joined(first)
    # the channel delivers the same tap again (a WeChat retry): same answer, nothing new
    delivery = Inbound.choice(chat.key("u1"), "c-redelivered", confirm, at=chat.clock.now())
    again = await chat.engine.handle(delivery)
    replay = await chat.engine.handle(delivery)
    assert [m.reply.text for m in again] == [m.reply.text for m in replay]
    assert await count_orders(service) == 1


async def test_changing_the_company_name_from_the_summary_updates_the_draft_and_asks_for_a_new_form(
    service: Service,
) -> None:
    await verified_applicant(service)
    chat = service.chat
    await chat.say("申请企业公章")
    await chat.tap("只办企业公章")
    for answer in (COMPANY, USCC, "李四", LEGAL_REP_ID, PHONE):
        await chat.say(answer)
    await chat.upload(png_scan(), "licence.png")
    await chat.tap("1 年")
    await chat.upload(pdf_scan(), "form.pdf")
    for answer in ("王五", PHONE, "广东省 广州市 天河区", "天河路 100 号 20 楼"):
        await chat.say(answer)
    await chat.tap("修改")
    await chat.tap("企业名称")
    before = mark(service)
    changed = await chat.say("上海示例科技有限公司")
    sent = replies_since(service, before)
    assert [r.kind for r in sent].count(ReplyKind.FILE) == 1  # a new form with the new name
    assert "重新上传盖章后的扫描件" in joined(changed)
    summary = await chat.upload(pdf_scan("new form"), "form2.pdf")
    assert "上海示例科技有限公司" in joined(summary)
    await chat.tap("确认无误")
    (order,) = await orders_of(service)  # the same draft, updated, not a second order
    assert order.status == "awaiting_payment"
    company = await service.container.platform.seals.company(
        await account_token(service), str(order.company_id)
    )
    assert company.name == "上海示例科技有限公司"
