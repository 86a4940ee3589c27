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
import secrets
from collections import defaultdict
from collections.abc import Iterator, Sequence

from bot.engine.messages import ConversationKey, OutboundMessage
from dbkit.bus import BusError, EventBus, Subscription

log = logging.getLogger("sealbot.webchat")

TOPIC = "webchat.delivered"
# Keys per notification: well under the bus's payload limit (a key is about 80 characters).
KEYS_PER_NOTIFICATION = 40
# The sender is called just before the outbox marks the message sent: a poll woken from there
# re-reads a moment later, so it finds the message marked.
SENDER_WAKE_DELAY = 0.05


class WakeUps:
    def __init__(self, bus: EventBus, *, channel: str, sweep_seconds: float = 2.0) -> None:
        self._bus = bus
        self._channel = channel
        self.sweep_seconds = sweep_seconds
        # This worker's notifications come back to it through the bus: it has woken its own
        # polls already, so it skips them.
        self._origin = secrets.token_hex(6)
        self._waiting: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._subscription: Subscription | None = None
        self._listener: asyncio.Task[None] | None = None
        self._publishing: set[asyncio.Task[None]] = set()
        self._bus_failing = False

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
            task = asyncio.ensure_future(self._publish(names[start : start + KEYS_PER_NOTIFICATION]))
            self._publishing.add(task)
            task.add_done_callback(self._publishing.discard)

    async def _publish(self, names: list[str]) -> None:
        try:
            await self._bus.publish(TOPIC, {"keys": names, "from": self._origin})
        except BusError as exc:
            if not self._bus_failing:
                log.warning("web chat wake-ups: %s; other workers' polls fall back to their sweep", exc)
            self._bus_failing = True
        else:
            if self._bus_failing:
                log.info("web chat wake-ups: the event bus carries them again")
            self._bus_failing = False

    async def start(self) -> None:
        if self._listener is not None:
            return
        self._subscription = self._bus.subscribe(TOPIC)
        self._listener = asyncio.create_task(self._listen(self._subscription), name="webchat-wakeups")

    async def _listen(self, subscription: Subscription) -> None:
        async for notification in subscription:
            if notification.data.get("from") == self._origin:
                continue
            keys = notification.data.get("keys")
            if isinstance(keys, list):
                for name in keys:
                    self.wake_here(str(name))

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
