"""A Nuonuo request whose result did not come back in time ("开票结果尚未返回") is asked for
again by its serial number (``queryInvoiceResult``), never submitted again: Nuonuo refuses a
repeated ``orderNo`` (the signature-checking fake does too)."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import httpx
import pytest

from seal_platform.invoices import InvoiceRecord
from seal_platform.invoicing import Amounts, InvoiceOrder, InvoiceStillPending
from seal_platform.invoicing.adapters import provider_for
from seal_platform.invoicing.nuonuo import QUERY_METHOD, REQUEST_METHOD, NuonuoError, NuonuoInvoicing
from seal_platform.services import PlatformServices
from seal_platform.settings import PlatformSettings
from tests.fakes.nuonuo import FakeNuonuo
from tests.platform.conftest import MakeAccount
from tests.platform.test_invoicing import _requested_invoice
from tests.platform.test_invoicing import fake_nuonuo as fake_nuonuo
from tests.platform.test_invoicing import nuonuo_settings as nuonuo_settings

__all__ = ["fake_nuonuo", "nuonuo_settings"]

MAX_POLLS = NuonuoInvoicing.max_polls


async def _invoice(services: PlatformServices, invoice_id: str) -> InvoiceRecord:
    async with services.db.session() as session:
        invoice = await session.get(InvoiceRecord, invoice_id)
    assert invoice is not None
    return invoice


async def test_a_retry_after_the_polls_ran_out_queries_the_pending_request_by_its_serial(
    nuonuo_settings: PlatformSettings,
    api: httpx.AsyncClient,
    make_account: MakeAccount,
    platform_services: PlatformServices,
    fake_nuonuo: FakeNuonuo,
) -> None:
    fake_nuonuo.pending_polls = MAX_POLLS + 2  # the tax system is slow today
    invoice_id, finance, _applicant, _amount = await _requested_invoice(api, make_account, platform_services)

    pending = await api.post(f"/v1/staff/invoices/{invoice_id}/issue", headers=finance.headers)
    assert pending.status_code == 502, pending.text
    assert pending.json()["code"] == "invoice_result_pending"
    assert "开票结果尚未返回" in pending.json()["message"]
    waiting = await _invoice(platform_services, invoice_id)
    assert waiting.status == "requested"
    assert waiting.provider_serial == FakeNuonuo.serial_of(0)
    assert fake_nuonuo.methods.count(REQUEST_METHOD) == 1

    retried = await api.post(f"/v1/staff/invoices/{invoice_id}/issue", headers=finance.headers)
    assert retried.status_code == 200, retried.text
    assert retried.json()["invoice_number"] == "26442000000000012345"
    # the retry only asked for the result: one submission, no repeated order number
    assert fake_nuonuo.methods.count(REQUEST_METHOD) == 1
    assert fake_nuonuo.repeated_orders == 0
    assert fake_nuonuo.methods.count(QUERY_METHOD) == MAX_POLLS + 3
    assert len(fake_nuonuo.orders) == 1


async def test_submitting_the_same_invoice_again_is_refused_as_a_repeated_order_number(
    nuonuo_settings: PlatformSettings, platform_services: PlatformServices, fake_nuonuo: FakeNuonuo
) -> None:
    """What a retry that submitted again would meet (so the test above would catch it)."""
    fake_nuonuo.pending_polls = 10**6
    adapter = provider_for(platform_services)
    assert isinstance(adapter, NuonuoInvoicing)
    adapter.max_polls = 1
    order = InvoiceOrder(
        reference="5b0c1f0e-6a57-4d0c-9a57-0c5b2b1d7e11",
        buyer_name="广州示例科技有限公司",
        buyer_tax_number="91440101MA5CYL5K8X",
        buyer_email="caiwu@buyer.example.cn",
        item_name="*信息技术服务*电子印章",
        amounts=Amounts.of(30000, Decimal("0.06")),
        drawer="李会计",
        remarks="",
    )
    with pytest.raises(InvoiceStillPending) as pending:
        await adapter.issue(order)
    with pytest.raises(NuonuoError) as refused:
        await adapter.issue(order)
    assert not isinstance(refused.value, InvoiceStillPending)
    assert refused.value.details["provider_code"] == "E9106"
    assert refused.value.code == "invoice_already_submitted"  # what finance can do: upload it
    assert fake_nuonuo.repeated_orders == 1
    # asked by its serial number, the first request is still there
    with pytest.raises(InvoiceStillPending):
        await adapter.issue(dataclasses.replace(order, provider_serial=pending.value.serial))
    assert fake_nuonuo.repeated_orders == 1


async def test_the_serial_is_stored_as_soon_as_nuonuo_accepts_the_request(
    nuonuo_settings: PlatformSettings,
    api: httpx.AsyncClient,
    make_account: MakeAccount,
    platform_services: PlatformServices,
    fake_nuonuo: FakeNuonuo,
) -> None:
    """Stored before the polls, not when they give up: a process that dies while it polls (a
    deploy, ``kill -9``) leaves the serial behind, and the next attempt asks for that request
    (the test above) instead of submitting again and meeting 订单编号已存在 for good."""
    fake_nuonuo.pending_polls = 2
    invoice_id, finance, _applicant, _amount = await _requested_invoice(api, make_account, platform_services)
    adapter = provider_for(platform_services)
    assert isinstance(adapter, NuonuoInvoicing)
    stored_while_polling: list[str | None] = []

    async def look_at_the_invoice(_seconds: float) -> None:
        stored_while_polling.append((await _invoice(platform_services, invoice_id)).provider_serial)

    adapter.sleep = look_at_the_invoice
    platform_services.invoicing = adapter
    issued = await api.post(f"/v1/staff/invoices/{invoice_id}/issue", headers=finance.headers)
    assert issued.status_code == 200, issued.text
    assert stored_while_polling == [FakeNuonuo.serial_of(0)] * 2
    assert fake_nuonuo.methods.count(REQUEST_METHOD) == 1
