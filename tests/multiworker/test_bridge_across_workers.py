"""The UKey bridge connected to worker B serves a chat that runs on worker A.

Two containers in one process on one fresh PostgreSQL database (bot and platform), talking
through the event bus (PostgreSQL LISTEN/NOTIFY). The PC's ``ukey-bridge`` (the real client,
on the fake token backend) pairs with and connects to B's ``/bridge/ws`` only; the user's
chat is handled by A, and only A delivers the replies (from the shared outbox). B's bridge sweep is set to 30 s, so only the bus explains a job
submitted on A reaching the PC on B promptly.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI

from bot.app import Container, build_container
from bot.bridge.presence import PRESENCE_TTL
from bot.bridge.router import bridge_router
from bot.bridge.wiring import RELAY_KEY, UpdateRelay
from bot.testing import ChatHarness, ManualClock, RecordingSender
from tests.contract.postgres import fresh_databases
from tests.conversations.conftest import Service
from tests.multiworker.test_bus_across_workers import SLOW_SWEEP, worker_settings
from tests.ukey_bridge.support import ScriptedPrompt
from tests.ukey_flows.conftest import free_port, short_sleep
from tests.ukey_flows.world import SealWorld, joined, pairing_code
from ukey_bridge.client import BridgeClient
from ukey_bridge.fake_backend import FakeBackend, FakeToken
from ukey_bridge.jobs import JobRunner
from ukey_bridge.pairing import pair

pytestmark = pytest.mark.postgres

PIN = "12345678"  # the initial PIN production sets
NEW_PIN = "13579246"
PRESENCE_TTL_PLUS = PRESENCE_TTL + timedelta(seconds=1)


@dataclass
class Cluster:
    a: Container
    b: Container
    world: SealWorld  # the applicant's chat, on A
    bridge_url: str  # B's address: the proxy sent the PC's WebSocket there

    async def settle(self) -> None:
        relay = self.b.engine.services.extra[RELAY_KEY]
        assert isinstance(relay, UpdateRelay)
        await relay.drain()  # B tells the conversation what its PC reported
        await self.world.service.settle()  # A delivers it

    async def until(self, text: str, *, since: int = 0, seconds: float = 20) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            await self.settle()
            said = joined(self.world.chat.transcript()[since:])
            if text in said:
                return said
            if loop.time() > deadline:
                raise AssertionError(f"the chat never said {text!r}; it said:\n{said}")
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    clock = ManualClock()
    sender = RecordingSender(channel="test")
    async with fresh_databases(2, "sealbot_workers") as (bot_url, platform_url):
        containers: list[Container] = []
        server: uvicorn.Server | None = None
        serving: asyncio.Task[None] | None = None
        world: SealWorld | None = None
        try:
            for name in ("a", "b"):
                settings = worker_settings(bot_url, platform_url, tmp_path / name)
                container = await build_container(settings, clock=clock, extra_senders={"test": sender})
                container.bridge.sweep_seconds = SLOW_SWEEP
                await container.start()
                # the harness delivers A's outbox itself (what B's engine writes there included),
                # so it sees every reply; nothing in the background races it for them
                await container.dispatcher.stop()
                await container.events.stop()
                containers.append(container)
            a, b = containers
            app = FastAPI()
            app.include_router(bridge_router(b.bridge))
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            for container in containers:
                container.engine.services.public_base_url = url
            server = uvicorn.Server(
                uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
            )
            serving = asyncio.create_task(server.serve())
            while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
                await asyncio.sleep(0.01)
            chat = ChatHarness(a.engine, a.dispatcher, sender, clock)
            world = SealWorld(Service(a, chat, clock))
            yield Cluster(a, b, world, url)
        finally:
            if server is not None and serving is not None:
                server.should_exit = True
                await asyncio.wait_for(serving, 10)
            if world is not None:
                await world.close()
            for container in containers:
                await container.stop()


@contextlib.asynccontextmanager
async def pc_on_b(side: Cluster, backend: FakeBackend, prompt: ScriptedPrompt) -> AsyncIterator[BridgeClient]:
    """The PC pairs with the code A's chat gave, through B, and stays connected to B."""
    code = pairing_code(joined(side.world.chat.transcript()))
    credential = await pair(side.bridge_url, code, device_name="Office PC")
    client = BridgeClient(
        credential,
        JobRunner(lambda: backend, prompt),
        sleep=short_sleep,
        clock=lambda: side.world.now().timestamp(),
    )
    task = asyncio.create_task(client.run_forever())
    try:
        await asyncio.wait_for(client.connected.wait(), 10)
        yield client
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_pin_change_asked_on_a_runs_on_the_pc_connected_to_b_and_a_is_told(
    tmp_path: Path,
) -> None:
    async with cluster(tmp_path) as side:
        backend = FakeBackend([FakeToken("FAKEKEY0000014", "", user_pin="", so_pin="", initialised=False)])
        side.world.install_station(lambda: backend)
        applicant = await side.world.applicant()
        seal = await side.world.active_seal(applicant)
        assert seal["key_serial"] == "FAKEKEY0000014"
        assert "ukey-bridge pair" in joined(await side.world.chat.say("UKey 助手（电脑）"))
        prompt = ScriptedPrompt(pins=[PIN, NEW_PIN])
        async with pc_on_b(side, backend, prompt):
            await side.until("已与您的账号配对")
            assert side.a.bridge.connected_here() == 0, "the PC must be connected to B only"
            assert side.b.bridge.connected_here() == 1

            # presence: A, which holds no socket, lists the PC connected to B as online
            listed = joined(await side.world.chat.say("UKey 助手（电脑）"))
            assert "Office PC｜在线" in listed
            assert await side.a.bridge.is_online(applicant.account_id)

            before = len(side.world.chat.transcript())
            loop = asyncio.get_running_loop()
            asked_at = loop.time()
            asked = joined(await side.world.chat.say("改ukey密码"))
            assert "ukey-bridge pair" not in asked, "A must see the PC online, not ask to pair again"
            said = await side.until("UKey 密码已修改", since=before)
            took = loop.time() - asked_at
        assert "请在电脑上输入 UKey 密码" in said
        token = backend.tokens["FAKEKEY0000014"]
        assert token.user_pin == NEW_PIN
        # B's sweep runs every 30 s: the job went from A to B over the bus
        assert took < 10.0, f"the job reached the PC after {took:.1f} s: a sweep, not the bus"


async def test_a_pc_on_a_worker_that_died_stops_counting_as_online(tmp_path: Path) -> None:
    async with cluster(tmp_path) as side:
        backend = FakeBackend([FakeToken("FAKEKEY0000015", "", user_pin="", so_pin="", initialised=False)])
        side.world.install_station(lambda: backend)
        applicant = await side.world.applicant()
        await side.world.active_seal(applicant)
        await side.world.chat.say("UKey 助手（电脑）")
        async with pc_on_b(side, backend, ScriptedPrompt()):
            await side.until("已与您的账号配对")
            assert await side.a.bridge.is_online(applicant.account_id)
            # B dies without closing anything: its rows stop being refreshed
            side.world.service.clock.advance(PRESENCE_TTL_PLUS)
            assert not await side.a.bridge.is_online(applicant.account_id)
            await side.a.bridge.sweep()  # any worker's sweep deletes the dead worker's rows
            listed = joined(await side.world.chat.say("UKey 助手（电脑）"))
        assert "Office PC｜离线" in listed
