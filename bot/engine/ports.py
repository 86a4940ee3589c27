"""Interfaces the engine depends on; adapters implement them, the composition root wires them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

from bot.engine.messages import FileRef, OutboundMessage


class ChannelSender(Protocol):
    """Delivers one outbound message on one channel kind.

    Raises ``bot.errors.DeliveryFailed`` on failure; the outbox owns retries and backoff, so an
    implementation makes one attempt and reports ``retry_after`` when the channel asked for it.

    A sender whose ``send`` never waits for anything (the web chat's wakes the page's poll) may
    say so with a class attribute ``waits = False``: the dispatcher then awaits it in its own
    task instead of starting a task for each message, which costs more than such a send.
    Senders that talk to a network leave it out (``True``): their sends overlap.
    """

    channel: str

    async def send(self, message: OutboundMessage) -> None: ...


class MediaStore(Protocol):
    """Content-addressed storage for files that pass through chats (uploads, PDFs, QR codes)."""

    async def put(
        self, data: bytes, *, filename: str, content_type: str, expires_at: datetime | None = None
    ) -> FileRef:
        """``expires_at``: the file is refused (:class:`bot.errors.MediaExpired`) and deleted
        from then on, before the store's own retention (a data export)."""
        ...

    async def get(self, media_id: str) -> bytes: ...


class Clock(Protocol):
    """Where bot code reads the time; tests inject their own (``bot.testing.ManualClock``)."""

    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)
