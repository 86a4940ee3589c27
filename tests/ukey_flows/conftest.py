"""A chat service with the bridge hub installed and served on 127.0.0.1, and a bridge program
on the "PC" (a SoftHSM2 token, or the fake backend for PIN lock-out) that pairs from the chat."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest
from fastapi import FastAPI

from bot.bridge.hub import BridgeHub
from bot.bridge.router import bridge_router
from bot.bridge.wiring import RELAY_KEY, UpdateRelay
from bot.engine.messages import Option
from tests.conversations.conftest import Service
from tests.conversations.conftest import service as service
from tests.fixtures.served import free_port, serve_in_loop
from tests.ukey_bridge.support import ScriptedPrompt
from tests.ukey_flows.world import SealWorld, joined, pairing_code
from ukey_bridge.backend import TokenBackend
from ukey_bridge.client import BridgeClient
from ukey_bridge.jobs import JobRunner
from ukey_bridge.pairing import pair


async def short_sleep(_delay: float) -> None:
    await asyncio.sleep(0.05)


@dataclass
class BridgeSide:
    world: SealWorld
    hub: BridgeHub
    relay: UpdateRelay
    url: str

    async def settle(self) -> None:
        await self.relay.drain()
        await self.world.service.settle()

    async def until(self, text: str, *, user: str = "u1", since: int = 0, seconds: float = 30) -> str:
        """Wait until the chat has said ``text`` (after reply number ``since``); return what it said."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            await self.settle()
            said = joined(self.world.chat.transcript(user)[since:])
            if text in said:
                return said
            if loop.time() > deadline:
                raise AssertionError(f"the chat never said {text!r}; it said:\n{said}")
            await asyncio.sleep(0.05)

    def last_options(self, user: str = "u1") -> list[Option]:
        """The buttons of the latest message that had any (pushed or answered)."""
        for reply in reversed(self.world.chat.sender.replies_for(user)):
            if reply.options:
                return list(reply.options)
        return []

    @contextlib.asynccontextmanager
    async def pc(
        self, backend: Callable[[], TokenBackend], prompt: ScriptedPrompt, *, user: str = "u1"
    ) -> AsyncIterator[BridgeClient]:
        """Pair with the code the chat gave, then run the bridge until the block ends."""
        code = pairing_code(joined(self.world.chat.transcript(user)))
        credential = await pair(self.url, code, device_name="Office PC")
        clock = self.world.service.clock
        client = BridgeClient(
            credential,
            JobRunner(backend, prompt),
            sleep=short_sleep,
            clock=lambda: clock.now().timestamp(),
        )
        task = asyncio.create_task(client.run_forever())
        try:
            await asyncio.wait_for(client.connected.wait(), 10)
            yield client
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@pytest.fixture
async def bridge_side(service: Service) -> AsyncIterator[BridgeSide]:
    hub = service.container.bridge  # the hub the composition root built
    assert hub is not None
    app = FastAPI()
    app.include_router(bridge_router(hub))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    service.container.engine.services.public_base_url = url
    async with serve_in_loop(app, port, lifespan="off"):
        world = SealWorld(service)
        relay = service.container.engine.services.extra[RELAY_KEY]
        try:
            yield BridgeSide(world, hub, relay, url)
        finally:
            await world.close()
