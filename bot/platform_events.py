"""Carries platform events (paid, approved, shipped, ...) into conversations, exactly once.

The platform keeps an ordered event feed; this consumer reads it from a durable cursor and
delivers each event with id ``platform:<id>``, which the engine deduplicates per conversation.
Delivery is at-least-once (the cursor moves after delivery), handling exactly-once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from bot.engine.messages import ExternalEvent
from bot.engine.ports import Clock
from bot.engine.runtime import Engine
from bot.engine.store import ConversationStore
from platform_client.client import PlatformClient
from platform_client.errors import PlatformClientError

log = logging.getLogger("sealbot.platform_events")
CURSOR = "platform-events"


class PlatformEventConsumer:
    def __init__(
        self,
        client: PlatformClient,
        engine: Engine,
        store: ConversationStore,
        clock: Clock,
        *,
        poll_seconds: float,
    ) -> None:
        self.client = client
        self.engine = engine
        self.store = store
        self.clock = clock
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    async def run_once(self, limit: int = 100) -> int:
        after = await self.store.cursor(CURSOR)
        page = await self.client.events.fetch(after=after, limit=limit)
        for event in page.events:
            if event.account_id:
                await self.engine.deliver_account_event(
                    event.account_id, ExternalEvent(f"platform:{event.id}", event.type, dict(event.data))
                )
            await self.store.set_cursor(CURSOR, event.id, self.clock.now())
        return len(page.events)

    async def drain(self) -> None:
        while await self.run_once():
            pass

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="platform-events")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            try:
                busy = await self.run_once()
            except PlatformClientError as exc:
                log.warning("platform event feed unavailable: %s", exc)
                busy = 0
            except Exception:
                log.exception("platform event delivery failed")
                busy = 0
            if busy:
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)
