"""Sandbox pay page, unpaid expiry and reconciliation with the provider."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from seal_platform.clock import FrozenClock
from seal_platform.payments.reconcile import reconcile_unpaid
from seal_platform.services import PlatformServices
from tests.platform.conftest import ON_BOTH_DATABASES, MakeAccount
from tests.platform.conftest import TestAccount as Applicant
from tests.platform.test_orders_support import event_types, new_enterprise_order, submit
from tests.platform.test_payments_notifications import awaiting_payment, order_status, sandbox

pytestmark = ON_BOTH_DATABASES


@pytest.fixture
async def applicant(make_account: MakeAccount) -> Applicant:
    return await make_account(realname=True)


async def test_pay_page_shows_amount_summary_and_qr_and_works_as_a_plain_form(
    api: httpx.AsyncClient, applicant: Applicant
) -> None:
    order_id, payment = await awaiting_payment(api, applicant)
    assert payment["code_url"] == f"http://platform.test/pay/{payment['id']}"
    page = await api.get(f"/pay/{payment['id']}")
    assert page.status_code == 200
    assert "¥300.00" in page.text
    assert order_id[:8].upper() in page.text  # the order number people see and say
    assert order_id not in page.text  # the UUID stays internal
    assert '<form method="post" action="">' in page.text
    assert "<script" not in page.text
    assert 'name="viewport"' in page.text
    qr = await api.get(f"/pay/{payment['id']}/qr.png")
    assert qr.headers["content-type"] == "image/png"
    assert qr.content.startswith(b"\x89PNG")

    pressed = await api.post(f"/pay/{payment['id']}")
    assert pressed.status_code == 303
    after = await api.get(f"/pay/{payment['id']}")
    assert 'id="status"' in after.text
    assert "支付成功" in after.text
    assert await order_status(api, applicant, order_id) == "under_review"


async def test_pay_page_of_an_unknown_payment_is_not_found(api: httpx.AsyncClient) -> None:
    assert (await api.get("/pay/" + "f" * 32)).status_code == 404


async def test_starting_a_payment_twice_reuses_the_open_one(
    api: httpx.AsyncClient, applicant: Applicant
) -> None:
    order_id, payment = await awaiting_payment(api, applicant)
    again = await api.post(f"/v1/orders/{order_id}/payments", json={}, headers=applicant.headers)
    assert again.json()["id"] == payment["id"]


async def test_payment_of_a_draft_is_refused(api: httpx.AsyncClient, applicant: Applicant) -> None:
    order = await new_enterprise_order(api, applicant)
    response = await api.post(f"/v1/orders/{order['id']}/payments", json={}, headers=applicant.headers)
    assert response.status_code == 409
    assert response.json()["code"] == "order_not_payable"


async def test_unpaid_order_expires_after_the_deadline_and_its_payment_is_closed(
    api: httpx.AsyncClient, applicant: Applicant, platform_services: PlatformServices, clock: FrozenClock
) -> None:
    order_id, payment = await awaiting_payment(api, applicant)
    clock.advance(timedelta(minutes=29))
    report = await reconcile_unpaid(platform_services)
    assert report.expired == []
    clock.advance(timedelta(minutes=2))
    report = await reconcile_unpaid(platform_services)
    assert report.expired == [order_id]
    assert await order_status(api, applicant, order_id) == "expired"
    assert "order.expired" in await event_types(platform_services, applicant.account_id)
    # The provider now refuses the payment.
    late = await api.post(f"/pay/{payment['id']}")
    assert late.status_code == 409
    assert late.json()["code"] == "payment_closed"


async def test_reconciliation_applies_a_payment_whose_notification_was_lost(
    api: httpx.AsyncClient, applicant: Applicant, platform_services: PlatformServices, clock: FrozenClock
) -> None:
    order_id, payment = await awaiting_payment(api, applicant)
    # The payer paid; the notification never arrived.
    await sandbox(platform_services).pay(payment["id"])
    clock.advance(timedelta(minutes=31))
    report = await reconcile_unpaid(platform_services)
    assert report.paid == [order_id]
    assert await order_status(api, applicant, order_id) == "under_review"


async def test_money_arriving_for_an_expired_order_is_marked_for_refund(
    api: httpx.AsyncClient, applicant: Applicant, platform_services: PlatformServices, clock: FrozenClock
) -> None:
    order_id, payment = await awaiting_payment(api, applicant)
    provider = sandbox(platform_services)
    headers, body = await provider.pay(payment["id"])
    # Expire the order as if the query had raced the payment.
    async with platform_services.db.session() as session:
        from seal_platform.orders import Order, OrderStatus, transition

        order = await session.get(Order, order_id)
        assert order is not None
        await transition(session, order, OrderStatus.EXPIRED, now=clock.now(), actor="system")
    response = await api.post("/v1/payments/notify/sandbox", content=body, headers=headers)
    assert response.status_code == 204
    assert await order_status(api, applicant, order_id) == "expired"
    record = (await api.get(f"/v1/payments/{payment['id']}", headers=applicant.headers)).json()
    assert record["status"] == "refund_required"
    assert "payment.refund_required" in await event_types(platform_services, applicant.account_id)


async def test_cancelling_before_payment_closes_the_payment(
    api: httpx.AsyncClient, applicant: Applicant, platform_services: PlatformServices
) -> None:
    order_id, payment = await awaiting_payment(api, applicant)
    cancelled = await api.post(f"/v1/orders/{order_id}/cancel", headers=applicant.headers)
    assert cancelled.json()["status"] == "cancelled"
    assert (await api.post(f"/pay/{payment['id']}")).status_code == 409
    record = (await api.get(f"/v1/payments/{payment['id']}", headers=applicant.headers)).json()
    assert record["status"] == "closed"


async def test_submitting_sets_a_deadline_from_the_setting(
    api: httpx.AsyncClient, applicant: Applicant, platform_services: PlatformServices
) -> None:
    order = await new_enterprise_order(api, applicant)
    submitted = await submit(api, applicant, order["id"])
    from datetime import datetime

    deadline = datetime.fromisoformat(submitted["payment_deadline"])
    expected = platform_services.clock.now() + timedelta(
        minutes=platform_services.settings.order_payment_timeout_minutes
    )
    assert deadline == expected


async def test_order_answers_and_events_carry_the_order_number_people_see(
    api: httpx.AsyncClient, applicant: Applicant, platform_services: PlatformServices
) -> None:
    from sqlalchemy import select

    from seal_platform.events import PlatformEvent
    from seal_platform.orders import order_code

    order_id, _payment = await awaiting_payment(api, applicant)
    one = (await api.get(f"/v1/orders/{order_id}", headers=applicant.headers)).json()
    assert one["code"] == order_code(order_id)
    listed = (await api.get("/v1/orders", headers=applicant.headers)).json()
    assert [o["code"] for o in listed] == [order_code(order_id)]
    async with platform_services.db.session() as session:
        events = list(
            await session.scalars(
                select(PlatformEvent).where(PlatformEvent.account_id == applicant.account_id)
            )
        )
    about_the_order = [e for e in events if e.data.get("order_id") == order_id]
    assert about_the_order
    assert all(e.data.get("order_code") == order_code(order_id) for e in about_the_order)
