"""Invoice issuing keeps the outside world out of its transactions.

- The invoice e-mail is queued in the issuing transaction and handed to a real SMTP server
  (aiosmtpd) only after that transaction commits: a rolled-back issue never e-mails, and an
  SMTP outage leaves the mail due until the server is back.
- Nuonuo is asked and polled with no database session held: with a pool of one connection,
  other requests are served while the invoice is being issued.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select

from seal_platform import invoices
from seal_platform.clock import FrozenClock
from seal_platform.invoices import InvoiceRecord, InvoiceStatus
from seal_platform.invoicing.nuonuo import QUERY_METHOD
from seal_platform.mail_outbox import MailOutboxRow, MailStatus, dispatcher_for, retry_delay
from seal_platform.services import PlatformServices
from seal_platform.settings import PlatformSettings
from tests.fakes.nuonuo import FakeNuonuo
from tests.fakes.smtp import smtp_server
from tests.platform.conftest import MakeAccount
from tests.platform.test_invoicing import _requested_invoice, invoice_xml
from tests.platform.test_invoicing import fake_nuonuo as fake_nuonuo
from tests.platform.test_invoicing import nuonuo_settings as nuonuo_settings

NUMBER = "26442000000000077777"


class Abandoned(Exception):
    """Something later in the same unit of work failed."""


def _mail_on(settings: PlatformSettings, port: int) -> None:
    settings.smtp_host, settings.smtp_port = "127.0.0.1", port
    settings.smtp_security, settings.smtp_from = "none", "invoice@seal.example.cn"


async def _outbox(services: PlatformServices) -> list[MailOutboxRow]:
    async with services.db.session() as session:
        return list(await session.scalars(select(MailOutboxRow).order_by(MailOutboxRow.id)))


def _xml(amount_fen: int) -> bytes:
    from decimal import Decimal

    from seal_platform.invoicing import Amounts

    amounts = Amounts.of(amount_fen, Decimal("0.06"))
    values = [f"{v / 100:.2f}" for v in (amounts.with_tax_fen, amounts.without_tax_fen, amounts.tax_fen)]
    return invoice_xml(NUMBER, *values)


async def test_the_invoice_mail_leaves_only_after_the_issuing_transaction_commits(
    platform_settings: PlatformSettings,
    api: httpx.AsyncClient,
    make_account: MakeAccount,
    platform_services: PlatformServices,
) -> None:
    platform_settings.invoice_provider = "manual"
    async with smtp_server() as mailbox:
        _mail_on(platform_settings, mailbox.port)
        invoice_id, _finance, _applicant, amount_fen = await _requested_invoice(
            api, make_account, platform_services
        )
        async with platform_services.db.session() as session:
            issued = await invoices.issue_uploaded(
                session, platform_services, invoice_id, [_xml(amount_fen), b"%PDF-1.7 tax"], actor="staff:li"
            )
            assert issued.status == InvoiceStatus.ISSUED
            await asyncio.sleep(0.3)  # time enough for an SMTP hand-over on 127.0.0.1
            assert mailbox.messages == []  # issued in this transaction, but not committed yet
        await platform_services.db.settle()
        [message] = mailbox.messages
    assert message["To"] == "caiwu@buyer.example.cn"
    assert NUMBER in message["Subject"]
    names = [part.get_filename() for part in message.iter_attachments()]
    assert names == [f"invoice-{NUMBER}.pdf", f"invoice-{NUMBER}.xml"]
    [row] = await _outbox(platform_services)
    assert (row.status, row.attempts) == (MailStatus.SENT, 1)


async def _issue_then_fail(services: PlatformServices, invoice_id: str, amount_fen: int) -> None:
    async with services.db.session() as session:
        await invoices.issue_uploaded(session, services, invoice_id, [_xml(amount_fen)], actor="staff:li")
        raise Abandoned


async def test_a_rolled_back_issue_never_e_mails(
    platform_settings: PlatformSettings,
    api: httpx.AsyncClient,
    make_account: MakeAccount,
    platform_services: PlatformServices,
) -> None:
    platform_settings.invoice_provider = "manual"
    async with smtp_server() as mailbox:
        _mail_on(platform_settings, mailbox.port)
        invoice_id, _finance, _applicant, amount_fen = await _requested_invoice(
            api, make_account, platform_services
        )
        with pytest.raises(Abandoned):
            await _issue_then_fail(platform_services, invoice_id, amount_fen)
        await platform_services.db.settle()
        dispatcher = dispatcher_for(platform_services.db)
        assert dispatcher is not None
        assert await dispatcher.deliver_due() == 0
        assert mailbox.messages == []
    assert await _outbox(platform_services) == []
    async with platform_services.db.session() as session:
        invoice = await session.get(InvoiceRecord, invoice_id)
    assert invoice is not None
    assert invoice.status == InvoiceStatus.REQUESTED


async def test_mail_refused_by_a_down_smtp_server_is_sent_once_it_is_back(
    platform_settings: PlatformSettings,
    api: httpx.AsyncClient,
    make_account: MakeAccount,
    platform_services: PlatformServices,
    clock: FrozenClock,
) -> None:
    platform_settings.invoice_provider = "manual"
    async with smtp_server() as down:
        closed_port = down.port
    _mail_on(platform_settings, closed_port)
    invoice_id, finance, _applicant, amount_fen = await _requested_invoice(
        api, make_account, platform_services
    )
    uploaded = await api.post(
        f"/v1/staff/invoices/{invoice_id}/upload",
        files=[("files", ("fp.xml", _xml(amount_fen), "application/xml"))],
        headers=finance.headers,
    )
    # The issue stands although the mail could not be handed over.
    assert uploaded.status_code == 200, uploaded.text
    await platform_services.db.settle()
    [row] = await _outbox(platform_services)
    assert (row.status, row.attempts, row.last_error) == (MailStatus.PENDING, 1, "SMTPConnectError")
    dispatcher = dispatcher_for(platform_services.db)
    assert dispatcher is not None
    async with smtp_server() as mailbox:
        _mail_on(platform_settings, mailbox.port)
        assert await dispatcher.deliver_due() == 0  # not due before its retry delay
        clock.advance(retry_delay(1) + timedelta(seconds=1))
        assert await dispatcher.deliver_due() == 1
        [message] = mailbox.messages
    assert NUMBER in message["Subject"]
    [row] = await _outbox(platform_services)
    assert (row.status, row.attempts) == (MailStatus.SENT, 2)


@pytest.fixture
def one_connection(nuonuo_settings: PlatformSettings) -> PlatformSettings:
    # Built before ``platform_services`` (requested first): ONE connection, a short wait for it.
    nuonuo_settings.database_pool_size = 1
    nuonuo_settings.database_max_overflow = 0
    nuonuo_settings.database_pool_timeout_seconds = 0.3
    nuonuo_settings.nuonuo_poll_seconds = 0.4
    return nuonuo_settings


async def test_nuonuo_is_polled_with_no_connection_held_so_other_requests_are_served(
    one_connection: PlatformSettings,
    api: httpx.AsyncClient,
    make_account: MakeAccount,
    platform_services: PlatformServices,
    fake_nuonuo: FakeNuonuo,
) -> None:
    fake_nuonuo.pending_polls = 3  # about 1.2 s of polling
    invoice_id, finance, _applicant, _amount = await _requested_invoice(api, make_account, platform_services)
    issuing = asyncio.create_task(api.post(f"/v1/staff/invoices/{invoice_id}/issue", headers=finance.headers))
    for _ in range(500):  # the fake answers from its own thread: look until it was polled
        if QUERY_METHOD in fake_nuonuo.methods:
            break
        await asyncio.sleep(0.01)
    assert QUERY_METHOD in fake_nuonuo.methods
    # While the provider is polled, the only connection is free for others.
    for _ in range(3):
        queue = await api.get("/v1/staff/invoices", params={"status": "requested"}, headers=finance.headers)
        assert queue.status_code == 200, queue.text
        assert [i["id"] for i in queue.json()] == [invoice_id]
        await asyncio.sleep(0.2)
    assert not issuing.done()
    issued = await issuing
    assert issued.status_code == 200, issued.text
    assert issued.json()["invoice_number"] == "26442000000000012345"
    async with platform_services.db.session() as session:
        requested = await session.scalar(
            select(func.count(InvoiceRecord.id)).where(InvoiceRecord.status == InvoiceStatus.REQUESTED)
        )
    assert requested == 0


async def test_an_automatic_issue_that_nuonuo_refuses_leaves_the_request_in_finances_queue(
    nuonuo_settings: PlatformSettings,
    api: httpx.AsyncClient,
    make_account: MakeAccount,
    platform_services: PlatformServices,
    fake_nuonuo: FakeNuonuo,
) -> None:
    nuonuo_settings.invoice_auto_issue = True
    fake_nuonuo.fail_with = "22"
    # The request commits before Nuonuo is asked; its refusal no longer undoes the request.
    invoice_id, finance, _applicant, _amount = await _requested_invoice(api, make_account, platform_services)
    queue = await api.get("/v1/staff/invoices", params={"status": "requested"}, headers=finance.headers)
    assert [i["id"] for i in queue.json()] == [invoice_id]
    assert fake_nuonuo.orders != []
