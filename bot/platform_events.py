"""Carries platform events (paid, approved, shipped, ...) into conversations, exactly once.

The platform keeps an ordered event feed; this consumer reads it from a durable cursor and
delivers each event with id ``platform:<id>``, which the engine deduplicates per conversation.
Delivery is at-least-once (the cursor moves after delivery), handling exactly-once.

The consumer reads the feed every ``poll_seconds`` and at once when woken: by the platform in
this process (embedded) or by ``platform.events`` on the event bus, which the platform (or the
worker whose embedded platform committed the event) publishes after each commit that added
events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from bot.engine.messages import ExternalEvent
from bot.engine.ports import Clock
from bot.engine.runtime import Engine
from bot.engine.store import ConversationStore
from dbkit.bus import PLATFORM_EVENTS_TOPIC, EventBus, TopicPeer
from platform_client.client import PlatformClient
from platform_client.errors import PlatformClientError

log = logging.getLogger("sealbot.platform_events")
CURSOR = "platform-events"
EVENTS_TOPIC = PLATFORM_EVENTS_TOPIC


class PlatformEventConsumer:
    def __init__(
        self,
        client: PlatformClient,
        engine: Engine,
        store: ConversationStore,
        clock: Clock,
        *,
        poll_seconds: float,
        bus: EventBus | None = None,
        settle_seconds: float = 3.5,
    ) -> None:
        """On PostgreSQL the platform's feed holds back events younger than a few seconds
        (``seal_platform.api_events.SETTLE``): a consumer woken for a new event reads at once
        and once more after ``settle_seconds``, so the event arrives then, not a poll later."""
        self.client = client
        self.engine = engine
        self.store = store
        self.clock = clock
        self.poll_seconds = poll_seconds
        self.settle_seconds = settle_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # listens only: the platform (or the embedded one's announcer) publishes on the topic
        self._listener = (
            TopicPeer(bus, EVENTS_TOPIC, lambda _data: self.wake(), fallback="the feed is polled", logger=log)
            if bus is not None
            else None
        )

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
        if self._listener is not None:
            await self._listener.start()
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="platform-events")

    async def stop(self) -> None:
        if self._listener is not None:
            await self._listener.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        follow_up = False
        while True:
            # Cleared before reading, not after: a wake-up that arrives while reading is kept,
            # and answered by another read at once.
            self._wake.clear()
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
            timeout = min(self.poll_seconds, self.settle_seconds) if follow_up else self.poll_seconds
            follow_up = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)
                follow_up = True
