"""One production run per order across platform processes: the claim is on the order row, so a
second process (another worker, another host) is refused while the first one's station works;
a failed run gives the claim back, and a crashed process's claim expires.

Each "process" here is a ``PlatformServices`` of its own over the same database (its own
engine, its own progress board, its own station), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from seal_platform.app import build_platform_services, create_platform_app
from seal_platform.clock import FrozenClock
from seal_platform.orders import RUN_CLAIM, Order
from seal_platform.production.station import DemoBlankKeys, RunnerStation
from seal_platform.services import PlatformServices
from seal_platform.settings import PlatformSettings
from seal_platform.staff import StaffUser
from seal_platform.staff_actions import (
    RUN_CLAIM_SECONDS_PER_KEY,
    _claim_run,
    plan_production,
)
from tests.console.test_production_in_background import SlowStation
from tests.platform.conftest import BASE_URL, ON_BOTH_DATABASES, SERVICE_KEY, MakeAccount
from tests.platform.test_orders_support import Staff, admin, paid_enterprise_order, staff_post

pytestmark = ON_BOTH_DATABASES

__all__ = ["admin"]


@pytest.fixture
async def other_process(
    platform_settings: PlatformSettings, clock: FrozenClock, platform_app: Any
) -> AsyncIterator[tuple[PlatformServices, httpx.AsyncClient]]:
    """A second platform process on the same database (after ``platform_app`` made the tables)."""
    services = build_platform_services(platform_settings, clock)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_platform_app(services)),
        base_url=BASE_URL,
        headers={"Authorization": f"Bearer {SERVICE_KEY}"},
    ) as http:
        yield services, http
    await services.db.dispose()


async def _approved_order(
    api: httpx.AsyncClient, make_account: MakeAccount, admin: Staff
) -> tuple[str, dict[str, str]]:
    """The order's id, and its customer's headers."""
    account = await make_account(realname=True)
    order = await paid_enterprise_order(api, account)
    approved = await staff_post(api, admin, f"/orders/{order['id']}/approve")
    assert approved.json()["status"] == "approved", approved.text
    return str(order["id"]), account.headers


async def _result(services: PlatformServices, order_id: str) -> dict[str, Any]:
    async with services.db.session() as session:
        order = await session.get(Order, order_id)
        assert order is not None
        return dict(order.result)


async def test_a_second_process_cannot_produce_an_order_another_process_is_producing(
    api: httpx.AsyncClient,
    make_account: MakeAccount,
    admin: Staff,
    platform_services: PlatformServices,
    other_process: tuple[PlatformServices, httpx.AsyncClient],
) -> None:
    order_id, customer = await _approved_order(api, make_account, admin)
    first_station = SlowStation()
    platform_services.production_station = first_station
    other_services, other_api = other_process
    other_station = SlowStation()
    other_station.gate.set()
    other_services.production_station = other_station

    first = asyncio.create_task(staff_post(api, admin, f"/orders/{order_id}/produce"))
    await asyncio.wait_for(first_station.reached.wait(), 10)
    assert RUN_CLAIM in await _result(platform_services, order_id)
    # the claim is the platform's bookkeeping: the customer's views of the order never show it
    seen = await api.get(f"/v1/orders/{order_id}", headers=customer)
    listed = await api.get("/v1/orders", headers=customer)
    assert seen.status_code == listed.status_code == 200
    assert RUN_CLAIM not in seen.json()["result"]
    assert RUN_CLAIM not in str(listed.json())

    # the other process has no run of this order on its own board, and is refused all the same
    refused = await staff_post(other_api, admin, f"/orders/{order_id}/produce")
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "production_running"
    assert other_station.calls == 0

    first_station.gate.set()
    produced = await asyncio.wait_for(first, 30)
    assert produced.status_code == 200, produced.text
    assert produced.json()["status"] == "in_production"
    assert RUN_CLAIM not in produced.json()["result"]  # the claim ends with the run
    late = await staff_post(other_api, admin, f"/orders/{order_id}/produce")
    assert late.status_code == 409
    assert late.json()["code"] == "invalid_transition"
    assert (first_station.calls, other_station.calls) == (1, 0)


async def test_a_failed_run_gives_the_claim_back_to_every_process(
    api: httpx.AsyncClient,
    make_account: MakeAccount,
    admin: Staff,
    platform_services: PlatformServices,
    other_process: tuple[PlatformServices, httpx.AsyncClient],
) -> None:
    order_id, _ = await _approved_order(api, make_account, admin)
    failing = SlowStation(fail=True)
    failing.gate.set()
    platform_services.production_station = failing
    failed = await staff_post(api, admin, f"/orders/{order_id}/produce")
    assert failed.status_code != 200, failed.text
    assert failed.json()["code"] == "station_key_removed"
    assert RUN_CLAIM not in await _result(platform_services, order_id)

    other_services, other_api = other_process
    other_services.production_station = RunnerStation(DemoBlankKeys())
    retried = await staff_post(other_api, admin, f"/orders/{order_id}/produce")
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "in_production"


async def test_the_claim_of_a_process_that_died_mid_run_expires(
    api: httpx.AsyncClient,
    make_account: MakeAccount,
    admin: Staff,
    platform_services: PlatformServices,
    other_process: tuple[PlatformServices, httpx.AsyncClient],
    clock: FrozenClock,
) -> None:
    order_id, _ = await _approved_order(api, make_account, admin)
    other_services, _other_api = other_process
    # the other process claims the run and dies before it ends: its claim stays on the order
    async with other_services.db.session() as session:
        staff = await session.scalar(select(StaffUser).where(StaffUser.username == admin.username))
        assert staff is not None
        plan = await plan_production(session, other_services, staff, order_id)
    await _claim_run(other_services, plan, admin.username)

    platform_services.production_station = RunnerStation(DemoBlankKeys())
    held = await staff_post(api, admin, f"/orders/{order_id}/produce")
    assert held.status_code == 409, held.text
    assert held.json()["code"] == "production_running"

    clock.advance(timedelta(seconds=RUN_CLAIM_SECONDS_PER_KEY * len(plan.seals) + 1))
    taken_over = await staff_post(api, admin, f"/orders/{order_id}/produce")
    assert taken_over.status_code == 200, taken_over.text
    assert taken_over.json()["status"] == "in_production"
    assert RUN_CLAIM not in taken_over.json()["result"]
