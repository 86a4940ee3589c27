"""Issuing an invoice takes an "issuing" claim in a short transaction before the provider is
called: of two clicks at once exactly one reaches Nuonuo (the other is told it is being issued),
and a failed call releases the claim so that the invoice can be issued again."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
from sqlalchemy import update

from seal_platform.clock import FrozenClock
from seal_platform.invoices import ISSUING_CLAIM_SECONDS, InvoiceRecord
from seal_platform.invoicing.nuonuo import REQUEST_METHOD
from seal_platform.services import PlatformServices
from seal_platform.settings import PlatformSettings
from tests.fakes.nuonuo import FakeNuonuo
from tests.platform.conftest import MakeAccount
from tests.platform.test_invoicing import _requested_invoice
from tests.platform.test_invoicing import fake_nuonuo as fake_nuonuo
from tests.platform.test_invoicing import nuonuo_settings as nuonuo_settings

__all__ = ["fake_nuonuo", "nuonuo_settings"]


async def test_two_simultaneous_issue_requests_reach_the_provider_once(
    nuonuo_settings: PlatformSettings,
    api: httpx.AsyncClient,
    make_account: MakeAccount,
    platform_services: PlatformServices,
    fake_nuonuo: FakeNuonuo,
) -> None:
    nuonuo_settings.nuonuo_poll_seconds = 0.2
    fake_nuonuo.pending_polls = 3  # the winner is busy polling for about 0.6 s
    invoice_id, finance, _applicant, _amount = await _requested_invoice(api, make_account, platform_services)

    def click() -> asyncio.Task[httpx.Response]:
        return asyncio.create_task(
            api.post(f"/v1/staff/invoices/{invoice_id}/issue", headers=finance.headers)
        )

    answers = await asyncio.gather(click(), click())
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200, 409], [answer.text for answer in answers]
    refused = next(answer for answer in answers if answer.status_code == 409)
    assert refused.json()["code"] == "invoice_being_issued"
    issued = next(answer for answer in answers if answer.status_code == 200)
    assert issued.json()["invoice_number"] == "26442000000000012345"
    assert fake_nuonuo.methods.count(REQUEST_METHOD) == 1
    assert len(fake_nuonuo.orders) == 1
    # once issued, a late click is told so, and the provider is not asked again
    late = await api.post(f"/v1/staff/invoices/{invoice_id}/issue", headers=finance.headers)
    assert late.status_code == 409
    assert late.json()["code"] == "invoice_already_issued"
    assert fake_nuonuo.methods.count(REQUEST_METHOD) == 1


async def test_a_failed_provider_call_releases_the_claim_so_the_invoice_can_be_issued_again(
    nuonuo_settings: PlatformSettings,
    api: httpx.AsyncClient,
    make_account: MakeAccount,
    platform_services: PlatformServices,
    fake_nuonuo: FakeNuonuo,
) -> None:
    invoice_id, finance, _applicant, _amount = await _requested_invoice(api, make_account, platform_services)
    working_url = nuonuo_settings.nuonuo_url
    nuonuo_settings.nuonuo_url = "http://127.0.0.1:9/open/v1/services"  # nothing listens there
    failed = await api.post(f"/v1/staff/invoices/{invoice_id}/issue", headers=finance.headers)
    assert failed.status_code == 502, failed.text
    async with platform_services.db.session() as session:
        invoice = await session.get(InvoiceRecord, invoice_id)
        assert invoice is not None
        assert (invoice.status, invoice.issuing_since) == ("requested", None)

    nuonuo_settings.nuonuo_url = working_url
    again = await api.post(f"/v1/staff/invoices/{invoice_id}/issue", headers=finance.headers)
    assert again.status_code == 200, again.text
    assert again.json()["invoice_number"] == "26442000000000012345"


async def test_a_claim_left_by_a_crashed_caller_is_taken_over_once_it_is_stale(
    nuonuo_settings: PlatformSettings,
    api: httpx.AsyncClient,
    make_account: MakeAccount,
    platform_services: PlatformServices,
    fake_nuonuo: FakeNuonuo,
    clock: FrozenClock,
) -> None:
    invoice_id, finance, _applicant, _amount = await _requested_invoice(api, make_account, platform_services)
    # a process that died while asking the provider leaves its claim behind
    async with platform_services.db.session() as session:
        await session.execute(
            update(InvoiceRecord).where(InvoiceRecord.id == invoice_id).values(issuing_since=clock.now())
        )
    held = await api.post(f"/v1/staff/invoices/{invoice_id}/issue", headers=finance.headers)
    assert held.status_code == 409
    assert held.json()["code"] == "invoice_being_issued"
    assert REQUEST_METHOD not in fake_nuonuo.methods

    clock.advance(timedelta(seconds=ISSUING_CLAIM_SECONDS + 1))
    taken_over = await api.post(f"/v1/staff/invoices/{invoice_id}/issue", headers=finance.headers)
    assert taken_over.status_code == 200, taken_over.text
