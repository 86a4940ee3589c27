"""The console's 制作 starts the production and answers at once; the run goes on in the
background and holds no database connection while the station works, so that with a pool of
ONE connection every other console page and API call is served meanwhile. A second click while
it runs is refused; the outcome is recorded in its own short transaction, a failure in none."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from seal_platform.production.progress import StepSink, no_progress
from seal_platform.production.station import (
    Certify,
    DemoBlankKeys,
    KeyOrder,
    ProducedKey,
    RunnerStation,
    StationFailed,
)
from seal_platform.services import PlatformServices
from seal_platform.settings import PlatformSettings
from tests.console.conftest import StaffFactory
from tests.console.support import order_under_review
from tests.platform.conftest import MakeAccount


class SlowStation:
    """The embedded demo station behind a gate: it reports its first step, then waits for the
    test to open the gate (a staff member fetching a blank UKey), then writes the key."""

    def __init__(self, *, fail: bool = False) -> None:
        self._station = RunnerStation(DemoBlankKeys())
        self.reached = asyncio.Event()
        self.gate = asyncio.Event()
        self.calls = 0
        self._fail = fail

    async def produce(
        self, order: KeyOrder, certify: Certify, progress: StepSink = no_progress
    ) -> ProducedKey:
        self.calls += 1
        progress("init_token")
        self.reached.set()
        await self.gate.wait()
        if self._fail:
            raise StationFailed("the key was pulled out", code="station_key_removed")
        return await self._station.produce(order, certify, progress)


@pytest.fixture
def one_connection(platform_settings: PlatformSettings) -> PlatformSettings:
    # Applied before ``platform_services`` builds the pool: ONE connection, a short wait for it.
    platform_settings.database_pool_size = 1
    platform_settings.database_max_overflow = 0
    platform_settings.database_pool_timeout_seconds = 0.3
    return platform_settings


async def _status(api: httpx.AsyncClient, order: dict[str, Any]) -> str:
    response = await api.get(f"/v1/orders/{order['id']}", headers=order["_account"].headers)
    assert response.status_code == 200, response.text
    return str(response.json()["status"])


async def test_production_runs_in_the_background_and_other_requests_are_served_with_one_connection(
    one_connection: PlatformSettings,
    api: httpx.AsyncClient,
    make_account: MakeAccount,
    console_for: StaffFactory,
    platform_services: PlatformServices,
) -> None:
    station = SlowStation()
    platform_services.production_station = station
    order = await order_under_review(api, make_account)
    admin = await console_for("root", ["admin"])
    colleague = await console_for("li.reviewer", ["reviewer"])
    assert "审核通过" in await admin.act(f"/orders/{order['id']}/approve")

    started = await asyncio.wait_for(admin.act(f"/orders/{order['id']}/produce"), 5)
    assert "已开始制作" in started
    assert f"订单 {order['id'][:8].upper()} " in started  # the order number the console shows
    await asyncio.wait_for(station.reached.wait(), 5)

    # the station is working and the run waits for it: the one connection is free for others
    for _ in range(3):
        page = await admin.get("/production")
        assert page.status_code == 200, page.text[:300]
        assert 'data-running="yes"' in page.text  # the page follows the run it came back to
        assert (await colleague.get("/review")).status_code == 200
        assert await _status(api, order) == "approved"
        view = (await admin.get(f"/orders/{order['id']}/production-progress")).json()
        assert (view["running"], view["steps"]) == (True, ["init_token"])
        await asyncio.sleep(0.1)

    # a second click (another tab, an impatient double click) does not start a second run
    assert "正在制作中" in await admin.act(f"/orders/{order['id']}/produce")
    assert station.calls == 1

    station.gate.set()
    for _ in range(200):
        view = (await admin.get(f"/orders/{order['id']}/production-progress")).json()
        if not view["running"]:
            break
        await asyncio.sleep(0.05)
    assert view["running"] is False
    assert view["error"] is None
    assert view["steps"] == ["init_token", "generate_key", "certify", "write", "verify"]
    assert await _status(api, order) == "in_production"
    assert f'id="order-{order["id"]}"' not in (await admin.get("/production")).text


async def test_a_failed_background_production_records_nothing_and_shows_its_error_on_the_page(
    api: httpx.AsyncClient,
    make_account: MakeAccount,
    console_for: StaffFactory,
    platform_services: PlatformServices,
) -> None:
    station = SlowStation(fail=True)
    platform_services.production_station = station
    order = await order_under_review(api, make_account)
    admin = await console_for("root", ["admin"])
    await admin.act(f"/orders/{order['id']}/approve")
    station.gate.set()
    message, view = await admin.produce(order["id"])
    assert "已开始制作" in message
    assert view["error"] == "station_key_removed"
    assert "UKey 被拔出" in view["error_text"]
    assert await _status(api, order) == "approved"
    page = await admin.get("/production")
    assert f'id="order-{order["id"]}"' in page.text  # still to be made: it can be retried
    assert 'data-running="yes"' in page.text  # the last run's error is shown
    # the retry goes through
    platform_services.production_station = RunnerStation(DemoBlankKeys())
    message, view = await admin.produce(order["id"])
    assert view["error"] is None
    assert await _status(api, order) == "in_production"
