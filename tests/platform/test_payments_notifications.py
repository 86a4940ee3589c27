"""Payment notifications in the WeChat Pay v3 format, signed with the sandbox's local key.

Each test crafts what arrives at ``POST /v1/payments/notify/sandbox``; only a genuine, fresh,
first-time notification that matches the payment may move the order.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from seal_platform.clock import FrozenClock
from seal_platform.orders import OrderTransition
from seal_platform.payments import ProcessedNotification
from seal_platform.payments.sandbox import SandboxProvider, SandboxSigner, transaction_resource
from seal_platform.services import PlatformServices
from tests.platform.conftest import ON_BOTH_DATABASES, MakeAccount
from tests.platform.conftest import TestAccount as Applicant
from tests.platform.test_orders_support import event_types, new_enterprise_order, submit

pytestmark = ON_BOTH_DATABASES

NOTIFY = "/v1/payments/notify/sandbox"


def sandbox(services: PlatformServices) -> SandboxProvider:
    provider = services.payment_providers["sandbox"]
    assert isinstance(provider, SandboxProvider)
    return provider


async def awaiting_payment(api: httpx.AsyncClient, account: Applicant) -> tuple[str, dict[str, Any]]:
    """An order awaiting payment and its started payment."""
    order = await new_enterprise_order(api, account)
    await submit(api, account, order["id"])
    started = await api.post(f"/v1/orders/{order['id']}/payments", json={}, headers=account.headers)
    assert started.status_code == 201, started.text
    return order["id"], dict(started.json())


def resource_for(services: PlatformServices, payment: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    provider = sandbox(services)
    resource = transaction_resource(
        mchid=provider.mchid,
        appid=provider.appid,
        out_trade_no=payment["id"],
        amount_fen=payment["amount_fen"],
        transaction_id="4200000000000000000001",
        success_time=services.clock.now(),
    )
    resource.update(overrides)
    return resource


async def order_status(api: httpx.AsyncClient, account: Applicant, order_id: str) -> str:
    return str((await api.get(f"/v1/orders/{order_id}", headers=account.headers)).json()["status"])


@pytest.fixture
async def applicant(make_account: MakeAccount) -> Applicant:
    return await make_account(realname=True)


async def test_valid_notification_marks_the_order_paid(
    api: httpx.AsyncClient, applicant: Applicant, platform_services: PlatformServices
) -> None:
    order_id, payment = await awaiting_payment(api, applicant)
    headers, body = sandbox(platform_services).signer.notification(
        resource_for(platform_services, payment), now=platform_services.clock.now()
    )
    response = await api.post(NOTIFY, content=body, headers=headers)
    assert response.status_code == 204, response.text
    assert await order_status(api, applicant, order_id) == "under_review"
    paid = (await api.get(f"/v1/payments/{payment['id']}", headers=applicant.headers)).json()
    assert paid["status"] == "succeeded"


async def test_tampered_body_is_refused_and_the_order_stays_unpaid(
    api: httpx.AsyncClient, applicant: Applicant, platform_services: PlatformServices
) -> None:
    order_id, payment = await awaiting_payment(api, applicant)
    headers, body = sandbox(platform_services).signer.notification(
        resource_for(platform_services, payment), now=platform_services.clock.now()
    )
    envelope = json.loads(body)
    envelope["summary"] = "tampered"
    response = await api.post(NOTIFY, content=json.dumps(envelope).encode(), headers=headers)
    assert response.status_code == 400
    assert response.json() == {"code": "FAIL", "message": "bad signature", "reason": "notification_rejected"}
    assert await order_status(api, applicant, order_id) == "awaiting_payment"


async def test_notification_signed_with_another_key_is_refused(
    api: httpx.AsyncClient, applicant: Applicant, platform_services: PlatformServices
) -> None:
    order_id, payment = await awaiting_payment(api, applicant)
    real = sandbox(platform_services).signer
    forger = SandboxSigner()
    # The forger knows the public serial and even the API v3 key, but not the private key.
    forger.serial, forger.apiv3_key = real.serial, real.apiv3_key
    headers, body = forger.notification(
        resource_for(platform_services, payment), now=platform_services.clock.now()
    )
    response = await api.post(NOTIFY, content=body, headers=headers)
    assert response.status_code == 400
    assert await order_status(api, applicant, order_id) == "awaiting_payment"


@pytest.mark.parametrize("age", [timedelta(minutes=6), timedelta(days=365 * 25), -timedelta(minutes=6)])
async def test_notification_outside_the_timestamp_window_is_refused(
    api: httpx.AsyncClient,
    applicant: Applicant,
    platform_services: PlatformServices,
    age: timedelta,
) -> None:
    order_id, payment = await awaiting_payment(api, applicant)
    headers, body = sandbox(platform_services).signer.notification(
        resource_for(platform_services, payment), now=platform_services.clock.now() - age
    )
    response = await api.post(NOTIFY, content=body, headers=headers)
    assert response.status_code == 400
    assert response.json()["message"] == "notification timestamp outside the accepted window"
    assert await order_status(api, applicant, order_id) == "awaiting_payment"


async def test_notification_just_inside_the_window_is_accepted(
    api: httpx.AsyncClient, applicant: Applicant, platform_services: PlatformServices, clock: FrozenClock
) -> None:
    order_id, payment = await awaiting_payment(api, applicant)
    headers, body = sandbox(platform_services).signer.notification(
        resource_for(platform_services, payment), now=clock.now()
    )
    clock.advance(timedelta(minutes=4, seconds=59))
    assert (await api.post(NOTIFY, content=body, headers=headers)).status_code == 204
    assert await order_status(api, applicant, order_id) == "under_review"


async def test_replayed_notification_is_acknowledged_without_a_second_effect(
    api: httpx.AsyncClient, applicant: Applicant, platform_services: PlatformServices
) -> None:
    order_id, payment = await awaiting_payment(api, applicant)
    headers, body = sandbox(platform_services).signer.notification(
        resource_for(platform_services, payment), now=platform_services.clock.now()
    )
    first = await api.post(NOTIFY, content=body, headers=headers)
    replay = await api.post(NOTIFY, content=body, headers=headers)
    assert first.status_code == replay.status_code == 204
    async with platform_services.db.session() as session:
        processed = await session.scalar(select(func.count()).select_from(ProcessedNotification))
        paid_moves = await session.scalar(
            select(func.count())
            .select_from(OrderTransition)
            .where(OrderTransition.order_id == order_id, OrderTransition.to_status == "paid")
        )
    assert processed == 1
    assert paid_moves == 1
    assert (await event_types(platform_services, applicant.account_id)).count("order.paid") == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("amount", {"total": 1, "payer_total": 1, "currency": "CNY"}),
        ("mchid", "1234567890"),
        ("appid", "wxother"),
    ],
)
async def test_notification_that_does_not_match_the_payment_is_refused(
    api: httpx.AsyncClient, applicant: Applicant, platform_services: PlatformServices, field: str, value: Any
) -> None:
    order_id, payment = await awaiting_payment(api, applicant)
    signer = sandbox(platform_services).signer
    headers, body = signer.notification(
        resource_for(platform_services, payment, **{field: value}), now=platform_services.clock.now()
    )
    response = await api.post(NOTIFY, content=body, headers=headers)
    assert response.status_code == 422
    assert response.json()["reason"] == "trade_mismatch"
    assert await order_status(api, applicant, order_id) == "awaiting_payment"
    # The refused notification was not recorded: the genuine one still goes through.
    headers, body = signer.notification(
        resource_for(platform_services, payment), now=platform_services.clock.now()
    )
    assert (await api.post(NOTIFY, content=body, headers=headers)).status_code == 204
    assert await order_status(api, applicant, order_id) == "under_review"


async def test_notification_for_an_unknown_trade_is_refused(
    api: httpx.AsyncClient, applicant: Applicant, platform_services: PlatformServices
) -> None:
    _order_id, payment = await awaiting_payment(api, applicant)
    headers, body = sandbox(platform_services).signer.notification(
        resource_for(platform_services, payment, out_trade_no="0" * 32), now=platform_services.clock.now()
    )
    response = await api.post(NOTIFY, content=body, headers=headers)
    assert response.status_code == 422


async def test_notification_without_signature_headers_is_refused(api: httpx.AsyncClient) -> None:
    response = await api.post(NOTIFY, content=b'{"id": "x"}', headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["code"] == "FAIL"


async def test_notification_for_an_unknown_provider_is_refused(api: httpx.AsyncClient) -> None:
    response = await api.post("/v1/payments/notify/alipay", content=b"{}")
    assert response.status_code == 404
