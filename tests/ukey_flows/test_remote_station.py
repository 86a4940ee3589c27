"""Staff's `ukey-bridge`, paired to their console account, is the production station: the
console's production writes the seal onto the blank SoftHSM2 token of that PC."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
import uvicorn

from seal_platform.production.station_hub import StationHub, station_hub
from tests.softhsm_fixtures import SoftHsmStore, slots_shown
from tests.ukey_bridge.support import ScriptedPrompt
from tests.ukey_flows.conftest import BridgeSide, free_port, short_sleep
from ukey_bridge.client import BridgeClient
from ukey_bridge.jobs import JobRunner
from ukey_bridge.pairing import pair

pytestmark = pytest.mark.softhsm


@contextlib.asynccontextmanager
async def served_platform(side: BridgeSide) -> AsyncIterator[str]:
    """The platform app on 127.0.0.1, where a station connects over a real WebSocket."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            side.world.service.container.platform_app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


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
