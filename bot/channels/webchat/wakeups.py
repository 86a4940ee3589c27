"""Web-chat long polls woken when a reply to their conversation is delivered, on any worker.

A page's long poll is held by one worker while the reply may be produced and delivered by
another. The outbox records a batch as sent and then calls ``delivered``: the polls this
worker holds for those conversations wake at once, and one notification on the event bus
(``webchat.delivered``, the conversation keys only) wakes the polls other workers hold. The
bus is a shortcut, not the record: a poll also re-reads the database every ``sweep_seconds``,
so a notification lost while the bus reconnects delays a reply by that much and loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from bot.engine.messages import ConversationKey, OutboundMessage
from dbkit.bus import EventBus, TopicPeer

log = logging.getLogger("sealbot.webchat")

TOPIC = "webchat.delivered"
# Keys per notification: well under the bus's payload limit (a key is about 80 characters).
KEYS_PER_NOTIFICATION = 40
# The sender is called just before the outbox marks the message sent: a poll woken from there
# re-reads a moment later, so it finds the message marked.
SENDER_WAKE_DELAY = 0.05


class WakeUps:
    def __init__(self, bus: EventBus, *, channel: str, sweep_seconds: float = 2.0) -> None:
        self._channel = channel
        self.sweep_seconds = sweep_seconds
        self._waiting: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._peer = TopicPeer(
            bus, TOPIC, self._heard, fallback="other workers' polls fall back to their sweep", logger=log
        )

    @contextlib.contextmanager
    def waiting(self, key: ConversationKey) -> Iterator[asyncio.Event]:
        """An event set when ``key`` gets a delivered message; enter it before reading the
        database, so a delivery between the read and the wait is not missed."""
        name = str(key)
        event = asyncio.Event()
        self._waiting[name].add(event)
        try:
            yield event
        finally:
            events = self._waiting.get(name)
            if events is not None:
                events.discard(event)
                if not events:
                    del self._waiting[name]

    def polls_waiting(self) -> int:
        """How many long polls of this worker are waiting now."""
        return sum(len(events) for events in self._waiting.values())

    def wake_here(self, name: str) -> None:
        for event in self._waiting.get(name, ()):
            event.set()

    def wake_soon(self, key: ConversationKey) -> None:
        """From the channel's sender, which runs just before the message is marked sent."""
        asyncio.get_running_loop().call_later(SENDER_WAKE_DELAY, self.wake_here, str(key))

    def delivered(self, messages: Sequence[OutboundMessage]) -> None:
        """The outbox's ``after_sent`` callback: wake this worker's polls, tell the others."""
        names = sorted({str(m.key) for m in messages if m.key.channel == self._channel})
        if not names:
            return
        for name in names:
            self.wake_here(name)
        for start in range(0, len(names), KEYS_PER_NOTIFICATION):
            self._peer.announce({"keys": names[start : start + KEYS_PER_NOTIFICATION]})

    def _heard(self, data: Mapping[str, Any]) -> None:
        keys = data.get("keys")
        if isinstance(keys, list):
            for name in keys:
                self.wake_here(str(name))

    async def start(self) -> None:
        await self._peer.start()

    async def stop(self) -> None:
        await self._peer.stop()
