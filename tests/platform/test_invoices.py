"""Invoices through the typed client: request on a paid order, issue by finance, download."""

from __future__ import annotations

import httpx
import pytest

from platform_client.client import PlatformClient
from platform_client.documents import DocumentsAPI
from platform_client.errors import Conflict, Forbidden, NotFound
from platform_client.invoices import InvoicesAPI
from platform_client.orders import OrdersAPI
from platform_client.staff import StaffAPI
from seal_platform.services import PlatformServices
from seal_platform.settings import PlatformSettings
from seal_platform.staff import StaffRole
from tests.platform.conftest import MakeAccount
from tests.platform.test_orders_support import (
    ADDRESS,
    COMPANY,
    STAFF_PASSWORD,
    events_of,
    make_staff,
    paid_enterprise_order,
    png_bytes,
)


async def test_finance_issues_the_invoice_and_the_applicant_downloads_the_pdf(
    api: httpx.AsyncClient,
    client: PlatformClient,
    make_account: MakeAccount,
    platform_services: PlatformServices,
) -> None:
    account = await make_account(realname=True)
    order = await paid_enterprise_order(api, account)
    invoices, staff = InvoicesAPI(client), StaffAPI(client)
    requested = await invoices.request(
        account.token,
        order["id"],
        title=COMPANY["name"],
        tax_number=COMPANY["uscc"],
        email="finance@example.cn",
    )
    assert requested.status == "requested"
    assert requested.amount_fen == order["amount_fen"]
    with pytest.raises(NotFound):
        await invoices.pdf(account.token, requested.id)

    await make_staff(api, platform_services, "finance1", [StaffRole.FINANCE])
    finance = await staff.login("finance1", STAFF_PASSWORD)
    queue = await staff.invoices(finance.token, status="requested")
    assert [i.id for i in queue] == [requested.id]
    issued = await staff.issue_invoice(finance.token, requested.id)
    assert issued.status == "issued"
    assert issued.invoice_number is not None
    assert len(issued.invoice_number) == 20

    pdf = await invoices.pdf(account.token, requested.id)
    assert pdf.startswith(b"%PDF-")
    (event,) = await events_of(platform_services, account.account_id, "invoice.issued")
    assert event["invoice_id"] == requested.id
    with pytest.raises(Conflict) as again:
        await staff.issue_invoice(finance.token, requested.id)
    assert again.value.code == "invoice_already_issued"


async def test_an_unpaid_order_cannot_be_invoiced(client: PlatformClient, make_account: MakeAccount) -> None:
    account = await make_account(realname=True)
    orders = OrdersAPI(client)
    draft = await orders.create(account.token, {"type": "enterprise_seal", "company": COMPANY, "years": 1})
    with pytest.raises(Conflict) as refused:
        await InvoicesAPI(client).request(account.token, draft.id, title="某公司", email="a@b.cn")
    assert refused.value.code == "order_not_invoiceable"


async def test_one_invoice_per_order(
    api: httpx.AsyncClient, client: PlatformClient, make_account: MakeAccount
) -> None:
    account = await make_account(realname=True)
    order = await paid_enterprise_order(api, account)
    invoices = InvoicesAPI(client)
    await invoices.request(account.token, order["id"], title="某公司", email="a@b.cn")
    with pytest.raises(Conflict) as refused:
        await invoices.request(account.token, order["id"], title="某公司", email="a@b.cn")
    assert refused.value.code == "invoice_exists"


async def test_invoice_is_issued_at_once_when_the_setting_says_so(
    api: httpx.AsyncClient,
    client: PlatformClient,
    make_account: MakeAccount,
    platform_settings: PlatformSettings,
) -> None:
    platform_settings.invoice_auto_issue = True
    account = await make_account(realname=True)
    order = await paid_enterprise_order(api, account)
    invoice = await InvoicesAPI(client).request(account.token, order["id"], title="某公司", email="a@b.cn")
    assert invoice.status == "issued"
    assert (await InvoicesAPI(client).pdf(account.token, invoice.id)).startswith(b"%PDF-")


async def test_only_finance_issues_invoices(
    api: httpx.AsyncClient,
    client: PlatformClient,
    make_account: MakeAccount,
    platform_services: PlatformServices,
) -> None:
    account = await make_account(realname=True)
    order = await paid_enterprise_order(api, account)
    invoice = await InvoicesAPI(client).request(account.token, order["id"], title="某公司", email="a@b.cn")
    await make_staff(api, platform_services, "shipper1", [StaffRole.SHIPPER])
    shipper = await StaffAPI(client).login("shipper1", STAFF_PASSWORD)
    with pytest.raises(Forbidden):
        await StaffAPI(client).issue_invoice(shipper.token, invoice.id)


async def test_typed_client_runs_an_order_from_upload_to_payment(
    api: httpx.AsyncClient, client: PlatformClient, make_account: MakeAccount
) -> None:
    account = await make_account(realname=True)
    documents, orders = DocumentsAPI(client), OrdersAPI(client)
    licence = await documents.upload(account.token, "business_licence", png_bytes(), filename="licence.png")
    form = await documents.upload(account.token, "impression_form", png_bytes(), filename="form.png")
    assert await documents.content(account.token, licence.id) == png_bytes()
    order = await orders.create(
        account.token,
        {
            "type": "enterprise_seal",
            "company": COMPANY,
            "years": 1,
            "mailing_address": ADDRESS,
            "documents": {"business_licence": licence.id, "impression_form_enterprise": form.id},
        },
        idempotency_key="client-order-1",
    )
    assert (await documents.impression_form(account.token, order.id)).startswith(b"%PDF-")
    submitted = await orders.submit(account.token, order.id)
    assert submitted.status == "awaiting_payment"
    payment = await orders.start_payment(account.token, order.id)
    assert payment.code_url is not None
    await api.post(f"/pay/{payment.id}")
    assert (await orders.get(account.token, order.id)).status == "under_review"
    assert [t.to_status for t in await orders.history(account.token, order.id)] == [
        "awaiting_payment",
        "paid",
        "under_review",
    ]
    prices = await orders.prices()
    assert prices.per_year_fen["enterprise"] == 30000
