"""Tells open inbox pages that something changed, so they refresh without reloading.

In-process only: with several workers a page also refreshes on a short timer (see the SSE
endpoint), so a change made by another worker shows up a few seconds later at worst.
"""

from __future__ import annotations

import asyncio
import contextlib


class InboxFeed:
    def __init__(self) -> None:
        self.version = 0
        self._event = asyncio.Event()

    def changed(self) -> None:
        self.version += 1
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait_beyond(self, version: int, within: float) -> int:
        """Returns as soon as the version differs from ``version``, or after ``within`` seconds."""
        if self.version != version:
            return self.version
        event = self._event
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), within)
        return self.version
