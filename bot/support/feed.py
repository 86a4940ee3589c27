"""Tells open inbox pages that something changed, so they refresh without reloading.

A change made on one worker (a ticket opened, claimed, answered) must refresh the pages every
worker serves: ``changed`` wakes this worker's pages at once and publishes ``support.inbox``
on the event bus, and the feed's listener turns other workers' notifications into local
changes. The page also refreshes on a timer (the SSE endpoint's keep-alive tick), so a
notification lost while the bus reconnects shows a few seconds later at worst.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets

from dbkit.bus import BusError, EventBus, InProcessBus, Subscription

log = logging.getLogger("sealbot.support")

TOPIC = "support.inbox"


class InboxFeed:
    def __init__(self, bus: EventBus | None = None) -> None:
        self.version = 0
        self._event = asyncio.Event()
        self._bus: EventBus = bus or InProcessBus()
        # Our own notifications come back through the bus; this worker counted them already.
        self._origin = secrets.token_hex(6)
        self._subscription: Subscription | None = None
        self._listener: asyncio.Task[None] | None = None
        self._publishing: set[asyncio.Task[None]] = set()
        self._bus_failing = False

    def changed(self) -> None:
        """Something in the inbox changed here: refresh this worker's pages, tell the others.
        Synchronous, so the desk can call it from the engine's after-commit hook."""
        self._bump()
        with contextlib.suppress(RuntimeError):  # no running loop: nobody is listening
            task = asyncio.get_running_loop().create_task(self._publish())
            self._publishing.add(task)
            task.add_done_callback(self._publishing.discard)

    def _bump(self) -> None:
        self.version += 1
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def _publish(self) -> None:
        try:
            await self._bus.publish(TOPIC, {"from": self._origin})
        except BusError as exc:
            if not self._bus_failing:
                log.warning("support inbox feed: %s; other workers' pages refresh on their timer", exc)
            self._bus_failing = True
        else:
            self._bus_failing = False

    async def start(self) -> None:
        if self._listener is None:
            self._subscription = self._bus.subscribe(TOPIC)
            self._listener = asyncio.create_task(self._listen(self._subscription), name="support-feed")

    async def _listen(self, subscription: Subscription) -> None:
        async for notification in subscription:
            if notification.data.get("from") != self._origin:
                self._bump()

    async def stop(self) -> None:
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        if self._publishing:
            await asyncio.gather(*set(self._publishing), return_exceptions=True)

    async def wait_beyond(self, version: int, within: float) -> int:
        """Returns as soon as the version differs from ``version``, or after ``within`` seconds."""
        if self.version != version:
            return self.version
        event = self._event
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), within)
        return self.version
