"""Invoice (开发票): pick a paid order, title, tax number, email; the PDF arrives as a file when
finance issues it, and the details are offered again next time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app import build_container
from bot.engine.messages import ReplyKind
from bot.testing import ChatHarness, ManualClock, RecordingSender
from tests.conversations.conftest import Service, service_settings
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
from tests.fakes.smtp import Mailbox, smtp_server


@pytest.fixture
async def mailbox(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Mailbox]:
    """A local SMTP server the embedded platform mails invoices to (``PLATFORM_SMTP_*``)."""
    async with smtp_server() as server:
        monkeypatch.setenv("PLATFORM_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("PLATFORM_SMTP_PORT", str(server.port))
        monkeypatch.setenv("PLATFORM_SMTP_SECURITY", "none")
        monkeypatch.setenv("PLATFORM_SMTP_FROM", "invoice@seal.example.cn")
        yield server


async def _service(tmp_path: Path) -> Service:
    clock = ManualClock()
    sender = RecordingSender(channel="test")
    container = await build_container(service_settings(tmp_path), clock=clock, extra_senders={"test": sender})
    return Service(container, ChatHarness(container.engine, container.dispatcher, sender, clock), clock)


@pytest.fixture
async def service(mailbox: Mailbox, tmp_path: Path) -> AsyncIterator[Service]:
    """The whole service with e-mail on: the chat asks for an address and says it mails there."""
    built = await _service(tmp_path)
    yield built
    await built.container.stop()


@pytest.fixture
async def service_without_mail(tmp_path: Path) -> AsyncIterator[Service]:
    built = await _service(tmp_path)
    yield built
    await built.container.stop()


async def paid(service: Service, *, english: bool = False) -> None:
    await verified_applicant(service, lang="en" if english else "zh")
    await apply_enterprise_until_payment(service, english=english)
    await pay_on_sandbox_page(service)
    await service.settle()
    await service.chat.say("菜单" if not english else "menu")


async def test_invoice_is_requested_and_the_pdf_arrives_as_a_file(service: Service, mailbox: Mailbox) -> None:
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
    assert "同时发送到 finance@example.com" in joined(requested)

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
    [mail] = mailbox.messages
    assert mail["To"] == "finance@example.com"
    assert [part.get_content_type() for part in mail.iter_attachments()] == ["application/pdf"]


async def test_without_smtp_settings_no_message_mentions_email(service_without_mail: Service) -> None:
    service = service_without_mail
    await paid(service)
    chat = service.chat
    said = [await chat.say("开发票"), await chat.tap("企业公章"), await chat.say(COMPANY)]
    summary = await chat.say(USCC)  # no e-mail question: the summary follows the tax number
    requested = await chat.tap("确认无误")
    assert "发票申请已提交" in joined(requested)
    desk = await staff_desk(service)
    (invoice,) = await desk.api.invoices(desk.token, status="requested")
    await desk.issue_invoice(invoice.id)
    before = mark(service)
    await service.settle()
    arrived = texts_of(replies_since(service, before))
    assert "电子发票已开具" in arrived
    everything = " ".join(joined(r) for r in [*said, summary, requested]) + arrived
    assert "邮箱" not in everything
    assert "@" not in everything


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
    assert order.code not in " ".join(options)  # invoiced already: not offered again
    await chat.tap("company seal")
    assert "张三" in [o.label for o in chat.options()]
    await chat.tap("张三")
    await chat.tap("Person, no tax number")
    assert "zhang@example.com" in [o.label for o in chat.options()]


async def test_no_paid_order_means_nothing_to_invoice(service: Service) -> None:
    await verified_applicant(service)
    answer = await service.chat.say("我要开发票")
    assert "目前没有可以开发票的订单" in joined(answer)
