"""What every channel is to the composition root: a ``Channel``.

A channel owns a sender (the outbox hands it replies), an optional router (its webhook or
pages), an optional passive window (WeChat answers inside the webhook response), a lifecycle
and a health report. ``initialize`` and ``shutdown`` are idempotent and a channel is an async
context manager, so the container can start channels in order and unwind exactly those that
started when a later one fails.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, Self

from fastapi import APIRouter

from bot.engine.ports import ChannelSender
from bot.engine.runtime import PassiveWindow

log = logging.getLogger("sealbot.channels")


class ChannelHealth(Protocol):
    def lines(self) -> list[str]: ...


class Channel(Protocol):
    @property
    def sender(self) -> ChannelSender: ...

    @property
    def router(self) -> APIRouter | None: ...

    @property
    def passive_window(self) -> PassiveWindow | None: ...

    async def initialize(self) -> None: ...

    async def shutdown(self) -> None: ...

    async def health(self) -> ChannelHealth: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None: ...


@dataclass(frozen=True)
class SimpleHealth:
    """The health of a channel with nothing outside to check (web chat, terminal)."""

    name: str

    def lines(self) -> list[str]:
        return [f"{self.name}: ok"]


class ChannelLifecycle:
    """Idempotent ``initialize``/``shutdown`` around a channel's ``_start``/``_stop``, and
    ``async with`` over them; safe against a second call while the first is running."""

    _started = False
    _lifecycle_lock: asyncio.Lock | None = None

    async def _start(self) -> None:
        """Start background work and check credentials (overridden)."""

    async def _stop(self) -> None:
        """Cancel background work and close clients (overridden)."""

    def _lock(self) -> asyncio.Lock:
        if self._lifecycle_lock is None:
            self._lifecycle_lock = asyncio.Lock()
        return self._lifecycle_lock

    async def initialize(self) -> None:
        async with self._lock():
            if self._started:
                return
            await self._start()
            self._started = True

    async def shutdown(self) -> None:
        async with self._lock():
            if not self._started:
                return
            self._started = False
            await self._stop()

    async def __aenter__(self) -> Self:
        await self.initialize()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.shutdown()


async def start_in_order(channels: Sequence[Channel]) -> None:
    """Initialize ``channels`` in order; when one fails, shut down those that started, newest
    first, and let the failure through: nothing is left running."""
    started: list[Channel] = []
    try:
        for channel in channels:
            await channel.initialize()
            started.append(channel)
    except BaseException:
        for channel in reversed(started):
            try:
                await channel.shutdown()
            except Exception:
                log.exception("channel shutdown failed while unwinding a failed start")
        raise


async def stop_in_reverse(channels: Sequence[Channel]) -> None:
    for channel in reversed(channels):
        await channel.shutdown()
