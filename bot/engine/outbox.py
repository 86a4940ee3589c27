"""Delivers queued replies: in order per conversation, with retries and backoff.

Every message the engine ever says goes through here (answers, status pushes, reminders, staff
replies), so ownership is checked in one place, just before each send: a bot message queued
before staff took a conversation over is held, never sent over the human.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Protocol

from bot.engine.messages import ConversationKey, Origin, OutboundMessage, opened
from bot.engine.ports import ChannelSender, Clock
from bot.engine.secrets_box import SecretBox
from bot.engine.state import Owner
from bot.engine.store import Conversations, Outbox, OutboxStatus
from bot.errors import DeliveryFailed, DeliveryParked

log = logging.getLogger("sealbot.outbox")


class OutboxStore(Outbox, Conversations, Protocol):
    """What the dispatcher needs: the outbox, and owners read just before sending."""


class DeliveryObserver(Protocol):
    """Told of every attempt's outcome (metrics): delivered after ``lag`` seconds in the
    outbox, or failed (to be retried or not)."""

    def delivered(self, message: OutboundMessage, lag: float) -> None: ...

    def failed(self, message: OutboundMessage, *, retryable: bool) -> None: ...


class OutboxDispatcher:
    def __init__(
        self,
        store: OutboxStore,
        senders: Mapping[str, ChannelSender],
        clock: Clock,
        *,
        batch: int = 50,
        lease: timedelta = timedelta(seconds=60),
        max_attempts: int = 8,
        backoff_base: float = 1.0,
        backoff_cap: float = 300.0,
        idle_poll: float = 1.0,
        reclaim_at_start: bool = False,
        reclaim_every: float | None = None,
        box: SecretBox | None = None,
        observer: DeliveryObserver | None = None,
        after_sent: Sequence[Callable[[list[OutboundMessage]], None]] = (),
    ) -> None:
        """``after_sent`` callbacks are called with each batch once it is recorded as sent:
        from then on readers of the delivered messages (a web chat's poll on any worker) see
        them."""
        self.store = store
        self.box = box  # opens the sealed full text of private replies just before sending
        self.senders = dict(senders)
        self.clock = clock
        self.batch = batch
        self.lease = lease
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.idle_poll = idle_poll
        # What a dead process was sending need not wait for its lease to run out: taken back
        # at start (one process owns an SQLite file, so all of it) and, where several workers
        # share the outbox, every ``reclaim_every`` seconds (the store knows which workers
        # are gone; see ``SqlConversationStore.reclaim_leases``).
        self.reclaim_at_start = reclaim_at_start
        self.observer = observer
        self.after_sent = list(after_sent)
        self.reclaim_every = reclaim_every
        self._next_reclaim = 0.0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.sent = 0
        self.failed = 0

    def kick(self, _messages: object = None) -> None:
        self._wake.set()

    def backoff(self, attempts: int) -> float:
        delay: float = min(self.backoff_cap, self.backoff_base * 2.0 ** max(0, attempts - 1))
        return delay * (0.8 + random.random() * 0.4)  # noqa: S311 - jitter, not security

    async def run_once(self) -> int:
        """Deliver what is due now; returns how many messages were attempted."""
        messages = await self.store.claim_due(self.clock.now(), limit=self.batch, lease=self.lease)
        if not messages:
            return 0
        # Ownership is read for the whole batch right before sending it (one query, not one
        # per message); a message queued by the bot before staff took over is held here.
        owners = await self.store.owners_of(list({m.key for m in messages if m.origin is Origin.BOT}))
        # Sends that wait for a network overlap, a task each; those that never wait are run
        # here meanwhile (``ChannelSender``). A batch holds one message per conversation, so
        # the two groups cannot reorder a conversation's replies.
        at_once: list[OutboundMessage] = []
        waiting: list[OutboundMessage] = []
        for message in messages:
            sender = self.senders.get(message.key.channel)
            (waiting if getattr(sender, "waits", True) else at_once).append(message)
        overlapping = asyncio.gather(*(self._deliver(m, owners) for m in waiting))
        sent: dict[int, bool] = {}
        try:
            for message in at_once:
                sent[message.outbox_id] = await self._deliver(message, owners)
        finally:
            sent.update(zip((m.outbox_id for m in waiting), await overlapping, strict=True))
        delivered = [m for m in messages if sent[m.outbox_id]]
        if delivered:
            await self.store.mark_sent_many([m.outbox_id for m in delivered], self.clock.now())
            for callback in self.after_sent:
                try:
                    callback(delivered)
                except Exception:  # a listener's bug must not stop deliveries
                    log.exception("after_sent callback failed")
        return len(messages)

    async def drain(self, *, rounds: int = 100) -> None:
        """Deliver until nothing is due (tests and the terminal chat)."""
        for _ in range(rounds):
            if await self.run_once() == 0:
                return

    async def _deliver(self, message: OutboundMessage, owners: dict[ConversationKey, str]) -> bool:
        """One attempt; True when the channel took the message."""
        if message.origin is Origin.BOT:
            owner = owners.get(message.key, Owner.BOT)
            if not Owner.is_bot(owner):
                await self.store.mark_final(message.outbox_id, OutboxStatus.HELD, f"owner is {owner}")
                return False
        sender = self.senders.get(message.key.channel)
        if sender is None:
            await self.store.mark_final(message.outbox_id, OutboxStatus.FAILED, "no sender for channel")
            log.error("no sender for channel %s", message.key.channel)
            return False
        try:
            await sender.send(self._opened(message))
        except DeliveryParked as exc:
            await self.store.mark_final(message.outbox_id, OutboxStatus.PARKED, exc.reason)
            return False
        except DeliveryFailed as exc:
            await self._failed(message, exc)
            return False
        except Exception as exc:  # a sender bug must not stop the dispatcher
            log.exception("sender %s crashed", message.key.channel)
            await self._failed(message, DeliveryFailed(f"sender error: {exc!r}"))
            return False
        self.sent += 1
        if self.observer is not None:
            lag = (self.clock.now() - message.created_at).total_seconds()
            self.observer.delivered(message, max(0.0, lag))
        return True

    def _opened(self, message: OutboundMessage) -> OutboundMessage:
        """The recipient gets the full text of a private reply; without the key (a dispatcher
        built without one) the masked copy is sent, never an error."""
        if message.reply.sealed is None:
            return message
        return replace(message, reply=opened(message.reply, self.box))

    async def _failed(self, message: OutboundMessage, exc: DeliveryFailed) -> None:
        attempts = message.attempt
        final = not exc.retryable or attempts >= self.max_attempts
        if self.observer is not None:
            self.observer.failed(message, retryable=not final)
        if final:
            self.failed += 1
            log.warning("giving up on outbox %s: %s", message.outbox_id, exc.reason)
            await self.store.mark_final(message.outbox_id, OutboxStatus.FAILED, exc.reason)
            return
        delay = exc.retry_after if exc.retry_after is not None else self.backoff(attempts)
        log.info("outbox %s retry in %.1fs: %s", message.outbox_id, delay, exc.reason)
        await self.store.mark_retry(
            message.outbox_id, self.clock.now() + timedelta(seconds=delay), exc.reason
        )

    # ---- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            if self.reclaim_at_start:
                await self._reclaim()
            self._task = asyncio.create_task(self._loop(), name="outbox-dispatcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _reclaim_if_due(self) -> None:
        if self.reclaim_every is not None and time.monotonic() >= self._next_reclaim:
            await self._reclaim()

    async def _reclaim(self) -> None:
        self._next_reclaim = time.monotonic() + (self.reclaim_every or 0.0)
        reclaimed = await self.store.reclaim_leases()
        if reclaimed:
            log.info("took back %d message(s) a stopped process was sending", reclaimed)

    async def _loop(self) -> None:
        while True:
            try:
                await self._reclaim_if_due()
                busy = await self.run_once()
            except Exception:
                log.exception("outbox round failed")
                busy = 0
            if busy:
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.idle_poll)
