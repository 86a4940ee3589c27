"""Invoice (开发票): pick a paid order, title, tax number, email; the PDF arrives as a file when
finance issues it, and the details are offered again next time."""

from __future__ import annotations

from bot.engine.messages import ReplyKind
from tests.conversations.conftest import Service
from tests.conversations.test_apply_enterprise import (
    COMPANY,
    OTHER_COMPANY,
    OTHER_USCC,
    USCC,
    USCC_TYPO,
    apply_enterprise_until_payment,
    joined,
    mark,
    orders_of,
    pay_on_sandbox_page,
    replies_since,
    staff_desk,
    texts_of,
    verified_applicant,
)


async def paid(service: Service, *, english: bool = False) -> None:
    await verified_applicant(service, lang="en" if english else "zh")
    await apply_enterprise_until_payment(service, english=english)
    await pay_on_sandbox_page(service)
    await service.settle()
    await service.chat.say("菜单" if not english else "menu")


async def test_invoice_is_requested_and_the_pdf_arrives_as_a_file(service: Service) -> None:
    await paid(service)
    chat = service.chat
    await chat.say("开发票")
    await chat.tap("企业公章")
    await chat.say(COMPANY)
    typo = await chat.say(USCC_TYPO)
    assert "校验码" in joined(typo)
    await chat.say(USCC)
    bad = await chat.say("finance at example")
    assert "finance@example.com" in joined(bad)
    summary = await chat.say("finance@example.com")
    assert COMPANY in joined(summary)
    assert USCC in joined(summary)
    requested = await chat.tap("确认无误")
    assert "发票申请已提交" in joined(requested)

    desk = await staff_desk(service)
    (invoice,) = await desk.api.invoices(desk.token, status="requested")
    assert invoice.tax_number == USCC
    await desk.issue_invoice(invoice.id)
    before = mark(service)
    await service.settle()
    arrived = replies_since(service, before)
    assert "电子发票已开具" in texts_of(arrived)
    files = [r for r in arrived if r.kind is ReplyKind.FILE]
    assert len(files) == 1
    assert files[0].file is not None
    assert files[0].file.content_type == "application/pdf"
    assert (await service.container.engine.media.get(files[0].file.media_id)).startswith(b"%PDF-")


async def test_invoice_details_are_remembered_and_a_person_needs_no_tax_number(service: Service) -> None:
    await paid(service, english=True)
    chat = service.chat
    (order,) = await orders_of(service)
    # from My orders the order is known already
    await chat.say("my orders")
    await chat.tap("under review")
    asked = await chat.tap("Ask for an invoice")
    assert "invoice title" in joined(asked)
    await chat.say("张三")
    await chat.tap("Person, no tax number")
    summary = await chat.say("zhang@example.com")
    assert "Tax number：—" in joined(summary)
    await chat.tap("All correct")
    # a second order, a second invoice: the details are offered with one tap. The first
    # application was put aside at its last question; coming back resumes it there.
    resumed = await chat.say("apply for enterprise seal")
    assert "Welcome back" in joined(resumed)
    await chat.tap("Later")
    await apply_enterprise_until_payment(service, english=True, company=OTHER_COMPANY, uscc=OTHER_USCC)
    await pay_on_sandbox_page(service)
    await service.settle()
    await chat.say("menu")
    await chat.say("invoice")
    options = [o.label for o in chat.options()]
    assert order.id[:8].upper() not in " ".join(options)  # invoiced already: not offered again
    await chat.tap("company seal")
    assert "张三" in [o.label for o in chat.options()]
    await chat.tap("张三")
    await chat.tap("Person, no tax number")
    assert "zhang@example.com" in [o.label for o in chat.options()]


async def test_no_paid_order_means_nothing_to_invoice(service: Service) -> None:
    await verified_applicant(service)
    answer = await service.chat.say("我要开发票")
    assert "目前没有可以开发票的订单" in joined(answer)
