"""Staff's `ukey-bridge`, paired to their console account, is the production station: the
console's production writes the seal onto the blank SoftHSM2 token of that PC."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import pytest

from seal_platform.production.progress import production_progress
from seal_platform.production.station_hub import StationHub, station_hub
from tests.fixtures.served import serve_in_loop
from tests.softhsm_fixtures import SoftHsmStore, slots_shown
from tests.ukey_bridge.support import ScriptedPrompt
from tests.ukey_flows.conftest import BridgeSide, free_port, short_sleep
from ukey_bridge.backend import TokenBackend
from ukey_bridge.client import BridgeClient
from ukey_bridge.errors import CredentialRevoked
from ukey_bridge.fake_backend import FakeBackend, FakeToken
from ukey_bridge.jobs import JobRunner
from ukey_bridge.pairing import pair

pytestmark = pytest.mark.softhsm


@contextlib.asynccontextmanager
async def served_platform(side: BridgeSide) -> AsyncIterator[str]:
    """The platform app on 127.0.0.1, where a station connects over a real WebSocket."""
    async with serve_in_loop(side.world.service.container.platform_app, free_port(), lifespan="off") as base:
        yield base


def remote_station(side: BridgeSide) -> StationHub:
    services = side.world.platform_services
    hub = station_hub(services)
    services.production_station = hub
    return hub


async def test_a_seal_is_produced_on_the_blank_token_of_the_paired_station_pc(
    bridge_side: BridgeSide, softhsm_store: SoftHsmStore
) -> None:
    world = bridge_side.world
    hub = remote_station(bridge_side)
    applicant = await world.applicant()
    async with served_platform(bridge_side) as platform_url:
        credential = await pair(
            f"{platform_url}/station", hub.create_code("seal-tests-admin"), device_name="制作台1"
        )
        assert credential.account_id == "staff:seal-tests-admin"
        clock = world.service.clock
        client = BridgeClient(
            credential,
            JobRunner(softhsm_store.backend, ScriptedPrompt()),
            sleep=short_sleep,
            clock=lambda: clock.now().timestamp(),
        )
        task = asyncio.create_task(client.run_forever())
        try:
            await asyncio.wait_for(client.connected.wait(), 10)
            assert len(hub.online()) == 1
            seal = await world.active_seal(applicant)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert f"Serial number:    {seal['key_serial']}" in slots_shown(softhsm_store)


async def test_production_with_no_station_online_is_refused_and_records_nothing(
    bridge_side: BridgeSide,
) -> None:
    world = bridge_side.world
    remote_station(bridge_side)
    applicant = await world.applicant()
    with pytest.raises(AssertionError, match="station_offline"):
        await world.active_seal(applicant)
    assert (await world.api.get("/v1/seals", headers=applicant.headers)).json() == []


async def _station(
    side: BridgeSide, hub: StationHub, platform_url: str, staff: str, backend: Callable[[], TokenBackend]
) -> tuple[BridgeClient, asyncio.Task[None]]:
    credential = await pair(f"{platform_url}/station", hub.create_code(staff), device_name=staff)
    clock = side.world.service.clock
    client = BridgeClient(
        credential,
        JobRunner(backend, ScriptedPrompt()),
        sleep=short_sleep,
        clock=lambda: clock.now().timestamp(),
    )
    task = asyncio.create_task(client.run_forever())
    await asyncio.wait_for(client.connected.wait(), 10)
    return client, task


async def test_production_runs_on_the_clicking_staff_members_own_station_and_reports_each_step(
    bridge_side: BridgeSide, softhsm_store: SoftHsmStore
) -> None:
    world = bridge_side.world
    hub = remote_station(bridge_side)
    applicant = await world.applicant()
    colleague_key = FakeToken("COLLEAGUE0001", "", user_pin="", so_pin="", initialised=False)
    async with served_platform(bridge_side) as platform_url:
        tasks = []
        try:
            # a colleague's station is online, with a blank key in it
            _c, task = await _station(
                bridge_side, hub, platform_url, "wang.producer", lambda: FakeBackend([colleague_key])
            )
            tasks.append(task)
            order_id = await world.approved_order(applicant)
            refused = await world.staff_call(f"/orders/{order_id}/produce")
            assert refused.status_code == 409
            assert refused.json()["code"] == "station_offline"
            assert "您的制作台不在线" in refused.json()["message"]
            assert colleague_key.initialised is False, "never handed to a colleague's station"
            assert (await world.api.get("/v1/seals", headers=applicant.headers)).json() == []

            # the clicking staff member's own station takes it
            _c, task = await _station(
                bridge_side, hub, platform_url, "seal-tests-admin", softhsm_store.backend
            )
            tasks.append(task)
            assert len(hub.online("seal-tests-admin")) == 1
            assert len(hub.online()) == 2
            produced = await world.staff_call(f"/orders/{order_id}/produce")
            assert produced.status_code == 200, produced.text
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    assert colleague_key.initialised is False
    progress = production_progress(world.platform_services).view(order_id)
    assert progress["steps"] == ["init_token", "generate_key", "certify", "write", "verify"]
    assert progress["running"] is False
    assert progress["error"] is None


async def test_an_unpaired_station_is_disconnected_refused_from_then_on_and_its_job_goes_to_the_other(
    bridge_side: BridgeSide,
) -> None:
    world = bridge_side.world
    hub = remote_station(bridge_side)
    applicant = await world.applicant()
    first_key = FakeToken("FIRSTSTATION01", "", user_pin="", so_pin="", initialised=False)
    second_key = FakeToken("SECONDSTATION1", "", user_pin="", so_pin="", initialised=False)
    reached = asyncio.Event()
    hold = asyncio.Event()

    async def slow(step: str) -> None:
        if step == "init_token":  # the first station is mid-job when it is unpaired
            reached.set()
            await hold.wait()

    async with served_platform(bridge_side) as platform_url:
        clock = world.service.clock
        credential = await pair(
            f"{platform_url}/station", hub.create_code("seal-tests-admin"), device_name="一号"
        )
        first = BridgeClient(
            credential,
            JobRunner(lambda: FakeBackend([first_key]), ScriptedPrompt(), step_hook=slow),
            sleep=short_sleep,
            clock=lambda: clock.now().timestamp(),
        )
        first_task = asyncio.create_task(first.run_forever())
        await asyncio.wait_for(first.connected.wait(), 10)
        _c, second_task = await _station(
            bridge_side, hub, platform_url, "seal-tests-admin", lambda: FakeBackend([second_key])
        )
        try:
            order_id = await world.approved_order(applicant)
            production = asyncio.create_task(world.staff_call(f"/orders/{order_id}/produce"))
            await asyncio.wait_for(reached.wait(), 10)
            (mine,) = [
                s for s in await hub.stations_of("seal-tests-admin") if s.device_id == credential.device_id
            ]
            assert mine.online
            assert await hub.unpair(credential.device_id, "seal-tests-admin", by="seal-tests-admin")
            produced = await asyncio.wait_for(production, 30)
            assert produced.status_code == 200, produced.text
            # the first station's connection was closed, and it cannot come back
            with pytest.raises(CredentialRevoked):
                await asyncio.wait_for(first_task, 10)
            assert credential.device_id not in {
                s.device_id for s in await hub.stations_of("seal-tests-admin")
            }
        finally:
            hold.set()
            for task in (first_task, second_task):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, CredentialRevoked):
                    await task
    seals = (await world.api.get("/v1/seals", headers=applicant.headers)).json()
    assert [s["key_serial"] for s in seals] == ["SECONDSTATION1"], (
        "the job was re-offered to the other station"
    )
    assert not await hub.unpair(credential.device_id, "seal-tests-admin", by="seal-tests-admin"), "once only"
