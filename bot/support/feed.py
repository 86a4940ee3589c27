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

from dbkit.bus import EventBus, InProcessBus, TopicPeer

log = logging.getLogger("sealbot.support")

TOPIC = "support.inbox"


class InboxFeed:
    def __init__(self, bus: EventBus | None = None) -> None:
        self.version = 0
        self._event = asyncio.Event()
        self._peer = TopicPeer(
            bus or InProcessBus(),
            TOPIC,
            lambda _data: self._bump(),
            fallback="other workers' pages refresh on their timer",
            logger=log,
        )

    def changed(self) -> None:
        """Something in the inbox changed here: refresh this worker's pages, tell the others.
        Synchronous, so the desk can call it from the engine's after-commit hook."""
        self._bump()
        self._peer.announce({})

    def _bump(self) -> None:
        self.version += 1
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def start(self) -> None:
        await self._peer.start()

    async def stop(self) -> None:
        await self._peer.stop()

    async def wait_beyond(self, version: int, within: float) -> int:
        """Returns as soon as the version differs from ``version``, or after ``within`` seconds."""
        if self.version != version:
            return self.version
        event = self._event
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), within)
        return self.version
