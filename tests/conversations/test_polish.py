"""What a careful applicant checks, in Chinese and English: the summary card shows their full
answers in groups with one 确认 and one 修改 (the stored copy stays masked); an edit prompt shows
the current value; step counters do not jump; after an action a few next steps instead of the
whole menu; one seal of a kind per company; the order timeline and the invoice again; the data on
file offered with one tap."""

from __future__ import annotations

import pytest

from bot.engine.messages import ReplyKind
from tests.conversations.conftest import Service
from tests.conversations.test_accounts import pages_of, register
from tests.conversations.test_apply_enterprise import (
    COMPANY,
    LEGAL_REP_ID,
    PHONE,
    USCC,
    apply_enterprise_until_payment,
    joined,
    mark,
    orders_of,
    pay_on_sandbox_page,
    pdf_scan,
    png_scan,
    pushed_option,
    replies_since,
    staff_desk,
    texts_of,
    verified_applicant,
)
from tests.password_page import use_page

RECIPIENT_PHONE = "13912345678"


async def until_summary(service: Service, *, english: bool = False) -> str:
    chat = service.chat
    await chat.say("apply for enterprise seal" if english else "我要申请企业公章")
    await chat.tap("The company seal only" if english else "只办企业公章")
    for answer in (COMPANY, USCC, "李四", LEGAL_REP_ID):
        await chat.say(answer)
    await chat.tap(PHONE)  # the owner reads their own phone in full; stored labels are masked
    await chat.upload(png_scan(), "licence.png")
    await chat.tap("1 yr" if english else "1 年")
    await chat.upload(pdf_scan(), "form.pdf")
    await chat.say("王五")
    await chat.say(RECIPIENT_PHONE)
    await chat.say("广东省 广州市 天河区")
    return joined(await chat.say("天河路 100 号 20 楼"))


async def stored_texts(service: Service) -> str:
    """What the outbox keeps for transcripts, staff views and the history."""
    delivered = await service.container.store.delivered(service.chat.key("u1"), 0, 1000)
    return "\n".join(m.reply.text for m in delivered)


async def test_the_summary_card_shows_full_values_grouped_with_one_confirm_and_one_edit(
    service: Service,
) -> None:
    await verified_applicant(service)
    summary = await until_summary(service)
    for shown in (
        "【企业信息】",
        "【法定代表人】",
        "【材料】",
        "【邮寄】",
        LEGAL_REP_ID,
        RECIPIENT_PHONE,
        PHONE,
    ):
        assert shown in summary, shown
    labels = [o.label for o in service.chat.options()]
    assert labels == ["确认无误，提交", "修改", "返回上一步", "取消"]
    stored = await stored_texts(service)
    assert LEGAL_REP_ID not in stored  # the copy kept for later is masked
    assert "360*************71" in stored
    assert RECIPIENT_PHONE not in stored

    fields = await service.chat.tap("修改")
    assert "请选择要修改的内容" in joined(fields)
    offered = [o.label for o in service.chat.options()]
    assert "法定代表人身份证号" in offered
    assert "返回核对" in offered
    edit = joined(await service.chat.tap("法定代表人身份证号"))
    assert f"当前填写的是：{LEGAL_REP_ID}" in edit  # the owner sees what they typed
    assert LEGAL_REP_ID not in await stored_texts(service)
    again = joined(await service.chat.say(LEGAL_REP_ID))
    assert "【企业信息】" in again


async def test_the_summary_card_in_english(service: Service) -> None:
    await verified_applicant(service, lang="en")
    summary = await until_summary(service, english=True)
    for shown in ("[Company]", "[Legal representative]", "[Documents]", "[Mailing]", LEGAL_REP_ID):
        assert shown in summary, shown
    assert [o.label for o in service.chat.options()][:2] == ["All correct, submit", "Change an answer"]
    await service.chat.tap("Change an answer")
    back = joined(await service.chat.tap("Back to the summary"))
    assert "[Mailing]" in back
    await service.chat.tap("Change an answer")
    edit = joined(await service.chat.tap("Recipient's phone"))
    assert f"Currently: {RECIPIENT_PHONE}" in edit


async def test_step_counters_do_not_jump_in_login_and_application(service: Service) -> None:
    await register(service)
    chat = service.chat
    await chat.say("退出登录")
    # Privacy: the password is typed on the secure page, not a chat step (two counted steps).
    assert "（第 1/2 步）" in joined(await chat.say("登录"))
    assert "（第 2/2 步）" in joined(await chat.say(PHONE))
    assert "安全页面" in joined(await chat.tap("密码"))
    view, _ = await use_page(pages_of(service), chat, "seal2024ok")
    assert view.status == "done", view
    await chat.say("实名认证")
    await chat.say("张三")
    await chat.say("11010519491231002X")
    await chat.tap("确认无误")
    await chat.say("english")
    first = joined(await chat.say("apply for enterprise seal"))
    second = joined(await chat.tap("The company seal only"))
    assert "(Step 1/14)" in first
    assert "(Step 2/14)" in second


async def test_after_logging_out_the_next_steps_not_the_whole_menu(service: Service) -> None:
    await register(service)
    bye = await service.chat.say("退出登录")
    assert "已退出登录" in joined(bye)
    assert [o.label for o in service.chat.options()] == ["登录", "主菜单"]
    await service.chat.say("english")
    await service.chat.say("log in")
    await service.chat.say(PHONE)
    await service.chat.tap("password")
    before = len(service.chat.sender.sent)
    view, _ = await use_page(pages_of(service), service.chat, "seal2024ok")  # privacy: on the page
    assert view.status == "done", view
    # what the chat said once the page logged it in (a push, not an answer to a chat message)
    answered = [m.reply for m in service.chat.sender.sent[before:] if m.reply.options]
    labels = [o.label for o in answered[-1].options]
    assert "Real-name verification" in labels  # what this account needs next
    assert len(labels) <= 4  # not the 11-button menu


@pytest.mark.parametrize("english", [False, True], ids=["zh-CN", "en"])
async def test_a_second_company_seal_while_one_is_on_its_way_is_stopped_after_the_credit_code(
    service: Service, english: bool
) -> None:
    later, fresh, scope = (
        ("Later", "Enter new details", "The company seal only")
        if english
        else ("以后再说", "填写新的信息", "只办企业公章")
    )
    await verified_applicant(service, lang="en" if english else "zh")
    await apply_enterprise_until_payment(service, english=english)
    await pay_on_sandbox_page(service)
    before = mark(service)
    await service.settle()
    (order,) = await orders_of(service)
    chat = service.chat
    await chat.tap(later, token=pushed_option(service, before, later))
    await chat.say("apply for enterprise seal" if english else "我要申请企业公章")
    await chat.tap(scope)
    await chat.tap(fresh)  # a company on file is offered first
    await chat.say(COMPANY)
    stopped = joined(await chat.say(USCC))
    code = order.code  # the platform's order number, as its answers carry it
    if english:
        assert (
            f"Order {code} for this company's seal of this kind is already in progress (under review)"
            in stopped
        )
        assert [o.label for o in chat.options()] == ["My orders"]
    else:
        assert f"这家企业的同类印章已有订单 {code} 正在办理（审核中），不能重复申请" in stopped
        assert [o.label for o in chat.options()] == ["我的订单"]


async def test_the_data_on_file_is_offered_and_filled_in(service: Service) -> None:
    await verified_applicant(service)
    await apply_enterprise_until_payment(service)
    await pay_on_sandbox_page(service)
    await service.settle()
    chat = service.chat
    await chat.say("菜单")
    offer = joined(await chat.say("我要申请法人章"))
    assert f"您之前为「{COMPANY}」办理过印章" in offer
    filled = joined(await chat.tap("使用上次的信息"))
    assert f"已填入「{COMPANY}」上次的信息" in filled
    assert "法定代表人的身份证号码" in filled  # the one thing the platform keeps sealed
    await chat.say(LEGAL_REP_ID)
    await chat.tap(PHONE)  # the owner reads their own phone in full; stored labels are masked
    await chat.upload(png_scan(), "front.png")
    await chat.upload(png_scan(colour=(20, 20, 200)), "back.png")
    await chat.tap("1 年")
    summary = joined(await chat.upload(pdf_scan(), "form.pdf"))
    for shown in (COMPANY, USCC, "李四", "王五", "天河路 100 号 20 楼"):
        assert shown in summary, shown


async def test_the_order_timeline_and_the_invoice_again_from_my_orders(service: Service) -> None:
    await verified_applicant(service)
    await apply_enterprise_until_payment(service)
    await pay_on_sandbox_page(service)
    await service.settle()
    chat = service.chat
    (order,) = await orders_of(service)
    await chat.say("开发票")
    await chat.tap("企业公章")
    await chat.say(COMPANY)
    await chat.say(USCC)
    await chat.say("finance@example.com")
    await chat.tap("确认无误")
    desk = await staff_desk(service)
    (invoice,) = await desk.api.invoices(desk.token, status="requested")
    requested = [o.label for o in (await _detail(service, "审核中"))]
    assert "申请发票" not in requested  # requested already: nothing to ask for again
    await desk.approve(order.id)
    await desk.produce(order.id)
    await desk.ship(order.id)
    await desk.issue_invoice(invoice.id)
    await service.settle()
    options = await _detail(service, "已寄出")
    detail = texts_of(replies_since(service, mark(service) - 3))
    for step in (
        "办理进度：",
        "已提交，待支付",
        "已支付",
        "进入审核",
        "审核通过",
        "印章已制作完成",
        "已交顺丰寄出",
        "电子发票已开具",
    ):
        assert step in detail, step
    assert "○ 已签收，办理完成" in detail
    labels = [o.label for o in options]
    assert "申请发票" not in labels
    before = mark(service)
    await chat.tap("下载发票")
    files = [r for r in replies_since(service, before) if r.kind is ReplyKind.FILE]
    assert len(files) == 1
    assert files[0].file is not None
    assert (await service.container.engine.media.get(files[0].file.media_id)).startswith(b"%PDF-")


async def _detail(service: Service, status: str) -> list:  # type: ignore[type-arg]
    chat = service.chat
    await chat.say("我的订单")
    await chat.tap(status)
    return chat.options()


async def test_the_timeline_in_english(service: Service) -> None:
    await verified_applicant(service, lang="en")
    await apply_enterprise_until_payment(service, english=True)
    await pay_on_sandbox_page(service)
    await service.settle()
    chat = service.chat
    await chat.say("my orders")
    detail = joined(await chat.tap("under review"))
    for step in (
        "Progress:",
        "Submitted, awaiting payment",
        "Paid",
        "Under review",
        "○ Approved",
        "○ Seal produced",
    ):
        assert step in detail, step
    assert "Ask for an invoice" in [o.label for o in chat.options()]
