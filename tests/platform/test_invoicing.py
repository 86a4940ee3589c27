"""The invoicing port: the tax split on several prices and rates, the Nuonuo adapter against a
signature-checking local fake (submitted, polled, files stored and e-mailed to a real local SMTP
server), its failures leaving the invoice requested, and the manual upload checked against the
order."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from email.message import EmailMessage

import httpx
import pytest
from pydantic import SecretStr

from seal_platform.invoicing import Amounts
from seal_platform.services import PlatformServices
from seal_platform.settings import PlatformSettings
from seal_platform.staff import StaffRole
from tests.fakes import nuonuo
from tests.fakes.nuonuo import FakeNuonuo
from tests.fakes.smtp import Mailbox, smtp_server
from tests.platform.conftest import MakeAccount
from tests.platform.test_orders_support import (
    COMPANY,
    Staff,
    another_company,
    events_of,
    make_staff,
    paid_enterprise_order,
)

SELLER_TAX_NUMBER = "91440101MA5AAAAA1B"


@pytest.mark.parametrize(
    ("with_tax_fen", "rate", "without_tax_fen", "tax_fen"),
    [
        (100000, "0.06", 94340, 5660),  # 1000.00 / 1.06 = 943.396...
        (30000, "0.06", 28302, 1698),
        (5000, "0.03", 4854, 146),
        (15000, "0.13", 13274, 1726),
        (1, "0.06", 1, 0),
        (60000, "0", 60000, 0),
        (99999, "0.09", 91742, 8257),
    ],
)
def test_the_price_includes_tax_and_is_split_at_the_rate_to_the_fen(
    with_tax_fen: int, rate: str, without_tax_fen: int, tax_fen: int
) -> None:
    amounts = Amounts.of(with_tax_fen, Decimal(rate))
    assert (amounts.without_tax_fen, amounts.tax_fen) == (without_tax_fen, tax_fen)
    assert amounts.without_tax_fen + amounts.tax_fen == with_tax_fen


@pytest.fixture
def fake_nuonuo() -> Iterator[FakeNuonuo]:
    with nuonuo.running(FakeNuonuo(seller_tax_number=SELLER_TAX_NUMBER, pending_polls=2)) as fake:
        yield fake


@pytest.fixture
def nuonuo_settings(platform_settings: PlatformSettings, fake_nuonuo: FakeNuonuo) -> PlatformSettings:
    platform_settings.invoice_provider = "nuonuo"
    platform_settings.invoice_seller_tax_number = SELLER_TAX_NUMBER
    platform_settings.invoice_seller_address = "广州市天河区示例路 1 号 020-00000000"
    platform_settings.invoice_seller_bank = "示例银行广州分行 6222000000000000"
    platform_settings.invoice_drawer = "李会计"
    platform_settings.nuonuo_app_key = nuonuo.APP_KEY
    platform_settings.nuonuo_app_secret = SecretStr(nuonuo.APP_SECRET)
    platform_settings.nuonuo_access_token = SecretStr(nuonuo.ACCESS_TOKEN)
    platform_settings.nuonuo_url = fake_nuonuo.base_url + "/open/v1/services"
    platform_settings.nuonuo_poll_seconds = 0
    return platform_settings


async def _requested_invoice(
    api: httpx.AsyncClient,
    make_account: MakeAccount,
    platform_services: PlatformServices,
    *,
    finance: str | None = "finance.li",
    company: dict[str, str] = COMPANY,
) -> tuple[str, Staff, dict[str, str], int]:
    """(invoice id, a finance member, the applicant's headers, the order's amount); a company
    has one seal of a kind, so a second order at once needs ``company`` of its own."""
    account = await make_account(realname=True)
    order = await paid_enterprise_order(api, account, company=company)
    requested = await api.post(
        f"/v1/orders/{order['id']}/invoice",
        json={"title": company["name"], "tax_number": company["uscc"], "email": "caiwu@buyer.example.cn"},
        headers=account.headers,
    )
    assert requested.status_code == 201, requested.text
    staff = (
        await make_staff(api, platform_services, finance, [StaffRole.FINANCE])
        if finance
        else Staff(headers={}, username="")
    )
    headers = {**account.headers, "X-Test-Account": account.account_id}
    return requested.json()["id"], staff, headers, int(order["amount_fen"])


async def test_nuonuo_issues_the_invoice_and_it_is_stored_delivered_and_emailed(
    nuonuo_settings: PlatformSettings,
    api: httpx.AsyncClient,
    make_account: MakeAccount,
    platform_services: PlatformServices,
    fake_nuonuo: FakeNuonuo,
) -> None:
    async with smtp_server() as mailbox:
        nuonuo_settings.smtp_host, nuonuo_settings.smtp_port = "127.0.0.1", mailbox.port
        nuonuo_settings.smtp_security, nuonuo_settings.smtp_from = "none", "invoice@seal.example.cn"
        invoice_id, finance, applicant, amount_fen = await _requested_invoice(
            api, make_account, platform_services
        )
        issued = await api.post(f"/v1/staff/invoices/{invoice_id}/issue", headers=finance.headers)
        assert issued.status_code == 200, issued.text
        # Handed to the SMTP server after the commit, by a task of its own.
        await platform_services.db.settle()
        _check_mail(mailbox)

    assert issued.json()["invoice_number"] == "26442000000000012345"
    assert fake_nuonuo.bad_signatures == 0
    assert (
        fake_nuonuo.methods
        == ["nuonuo.OpeMplatform.requestBillingNew"] + ["nuonuo.OpeMplatform.queryInvoiceResult"] * 3
    )
    [sent] = fake_nuonuo.orders
    expected = Amounts.of(amount_fen, Decimal("0.06"))
    [line] = sent["invoiceDetail"]
    assert line["taxIncludedAmount"] == f"{amount_fen / 100:.2f}"
    assert line["taxExcludedAmount"] == f"{expected.without_tax_fen / 100:.2f}"
    assert line["tax"] == f"{expected.tax_fen / 100:.2f}"
    assert (sent["buyerName"], sent["buyerTaxNum"], sent["clerk"]) == (
        COMPANY["name"],
        COMPANY["uscc"],
        "李会计",
    )
    assert sent["salerAccount"] == "示例银行广州分行 6222000000000000"
    pdf = await api.get(f"/v1/invoices/{invoice_id}/pdf", headers=applicant)
    assert pdf.content == nuonuo.PDF
    (event,) = await events_of(platform_services, applicant["X-Test-Account"], "invoice.issued")
    assert event["emailed_to"] == "caiwu@buyer.example.cn"


def _check_mail(mailbox: Mailbox) -> None:
    [message] = mailbox.messages
    assert isinstance(message, EmailMessage)
    assert mailbox.recipients == [["caiwu@buyer.example.cn"]]
    assert message["To"] == "caiwu@buyer.example.cn"
    assert "invoice@seal.example.cn" in message["From"]
    assert message["Subject"] == "【电子印章服务】电子发票 26442000000000012345"
    assert message["Message-ID"]
    attachments = {part.get_filename(): part for part in message.iter_attachments()}
    assert set(attachments) == {"invoice-26442000000000012345.pdf", "invoice-26442000000000012345.ofd"}
    pdf = attachments["invoice-26442000000000012345.pdf"]
    assert pdf.get_content_type() == "application/pdf"
    assert pdf.get_content() == nuonuo.PDF
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    assert "26442000000000012345" in body.get_content()


async def test_a_failed_issue_at_nuonuo_leaves_the_invoice_requested(
    nuonuo_settings: PlatformSettings,
    api: httpx.AsyncClient,
    make_account: MakeAccount,
    platform_services: PlatformServices,
    fake_nuonuo: FakeNuonuo,
) -> None:
    fake_nuonuo.fail_with = "22"
    invoice_id, finance, _applicant, _amount = await _requested_invoice(api, make_account, platform_services)
    refused = await api.post(f"/v1/staff/invoices/{invoice_id}/issue", headers=finance.headers)
    assert refused.status_code == 502
    assert refused.json()["code"] == "invoice_provider_failed"
    assert refused.json()["details"]["provider_message"] == "购方名称与税号不符"
    queue = await api.get("/v1/staff/invoices", params={"status": "requested"}, headers=finance.headers)
    assert [i["id"] for i in queue.json()] == [invoice_id]


async def test_a_wrong_app_secret_is_refused_by_nuonuo_and_nothing_changes(
    nuonuo_settings: PlatformSettings,
    api: httpx.AsyncClient,
    make_account: MakeAccount,
    platform_services: PlatformServices,
    fake_nuonuo: FakeNuonuo,
) -> None:
    nuonuo_settings.nuonuo_app_secret = SecretStr("not-the-secret")
    invoice_id, finance, _applicant, _amount = await _requested_invoice(api, make_account, platform_services)
    refused = await api.post(f"/v1/staff/invoices/{invoice_id}/issue", headers=finance.headers)
    assert refused.status_code == 502
    assert fake_nuonuo.bad_signatures == 1
    assert fake_nuonuo.orders == []
    queue = await api.get("/v1/staff/invoices", params={"status": "requested"}, headers=finance.headers)
    assert [i["id"] for i in queue.json()] == [invoice_id]


def invoice_xml(number: str, with_tax: str, without_tax: str, tax: str) -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<EInvoice xmlns="http://www.chinatax.gov.cn/einvoice">
  <Header><EIid>{number}</EIid></Header>
  <TaxSupervisionInfo><InvoiceNumber>{number}</InvoiceNumber><IssueTime>2026-11-29 10:15:00</IssueTime></TaxSupervisionInfo>
  <EInvoiceData><BasicInformation>
    <TotalAmWithoutTax>{without_tax}</TotalAmWithoutTax><TotalTaxAm>{tax}</TotalTaxAm>
    <TotalTax-includedAmount>{with_tax}</TotalTax-includedAmount>
  </BasicInformation></EInvoiceData>
</EInvoice>""".encode()


async def test_manual_invoices_are_uploaded_by_finance_and_checked_against_the_order(
    platform_settings: PlatformSettings,
    api: httpx.AsyncClient,
    make_account: MakeAccount,
    platform_services: PlatformServices,
) -> None:
    platform_settings.invoice_provider = "manual"
    invoice_id, finance, applicant, amount_fen = await _requested_invoice(
        api, make_account, platform_services
    )
    needs_upload = await api.post(f"/v1/staff/invoices/{invoice_id}/issue", headers=finance.headers)
    assert needs_upload.status_code == 409
    assert needs_upload.json()["code"] == "invoice_needs_upload"

    amounts = Amounts.of(amount_fen, Decimal("0.06"))
    right = [f"{v / 100:.2f}" for v in (amounts.with_tax_fen, amounts.without_tax_fen, amounts.tax_fen)]
    wrong_split = invoice_xml("26442000000000099999", right[0], right[0], "0.00")
    mismatch = await api.post(
        f"/v1/staff/invoices/{invoice_id}/upload",
        files=[("files", ("fp.xml", wrong_split, "application/xml"))],
        headers=finance.headers,
    )
    assert mismatch.status_code == 422
    assert mismatch.json()["code"] == "invoice_amount_mismatch"
    assert mismatch.json()["details"]["expected"] == right

    pdf = b"%PDF-1.7 issued in the tax system"
    uploaded = await api.post(
        f"/v1/staff/invoices/{invoice_id}/upload",
        files=[
            ("files", ("fp.xml", invoice_xml("26442000000000099999", *right), "application/xml")),
            ("files", ("fp.pdf", pdf, "application/pdf")),
        ],
        headers=finance.headers,
    )
    assert uploaded.status_code == 200, uploaded.text
    assert uploaded.json()["invoice_number"] == "26442000000000099999"
    assert uploaded.json()["issued_at"]
    delivered = await api.get(f"/v1/invoices/{invoice_id}/pdf", headers=applicant)
    assert delivered.content == pdf


async def test_a_manual_upload_without_xml_needs_a_typed_number_and_date(
    platform_settings: PlatformSettings,
    api: httpx.AsyncClient,
    make_account: MakeAccount,
    platform_services: PlatformServices,
) -> None:
    platform_settings.invoice_provider = "manual"
    invoice_id, finance, _applicant, _amount = await _requested_invoice(api, make_account, platform_services)
    ofd = b"PK\x03\x04 ofd"
    missing = await api.post(
        f"/v1/staff/invoices/{invoice_id}/upload",
        files=[("files", ("fp.ofd", ofd, "application/ofd"))],
        headers=finance.headers,
    )
    assert missing.json()["code"] == "invoice_number_required"
    typed = await api.post(
        f"/v1/staff/invoices/{invoice_id}/upload",
        files=[("files", ("fp.ofd", ofd, "application/ofd"))],
        data={"number": "26442000000000077777", "issued_on": "2026-11-29"},
        headers=finance.headers,
    )
    assert typed.status_code == 200, typed.text

    other_id, _staff, _headers, _amount = await _requested_invoice(
        api, make_account, platform_services, finance=None, company=another_company(1)
    )
    gif = await api.post(
        f"/v1/staff/invoices/{other_id}/upload",
        files=[("files", ("fp.gif", b"GIF89a....", "image/gif"))],
        data={"number": "26442000000000088888", "issued_on": "2026-11-29"},
        headers=finance.headers,
    )
    assert gif.json()["code"] == "invoice_file_type"
