"""Builds the bridge hub on the bot's database and connects its updates to conversations.

The hub reports updates from inside its own calls, some of which a flow makes while it holds
its conversation's lock (submitting a job emits ``job_queued``). Delivering there would wait
on that very lock, so updates go through a queue with one worker, which also keeps the order
in which the hub reported them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from bot.bridge.adapters import (
    ConversationTokens,
    PlatformCertificateIssuer,
    PlatformSoPinProvider,
    job_update_to_event,
)
from bot.bridge.hub import BridgeHub
from bot.bridge.models import BridgeJob
from bot.bridge.ports import JobUpdate
from bot.db import Database
from bot.engine.messages import ConversationKey
from bot.engine.runtime import Engine
from handlers.ukey import HUB_KEY

if TYPE_CHECKING:
    from bot.core import Core

log = logging.getLogger(__name__)

RELAY_KEY = "bridge_relay"


@dataclass(frozen=True)
class JobFacts:
    attempt: int | None
    order_id: str | None


class UpdateRelay:
    """Hands hub updates to the engine one at a time, in order, off the caller's stack."""

    def __init__(self, engine: Engine, facts_of: Callable[[JobUpdate], Awaitable[JobFacts]]) -> None:
        self._engine = engine
        self._facts_of = facts_of
        self._queue: asyncio.Queue[JobUpdate] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None

    async def __call__(self, update: JobUpdate) -> None:
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._run(), name="bridge-updates")
        self._queue.put_nowait(update)

    async def _run(self) -> None:
        while True:
            update = await self._queue.get()
            try:
                await self.deliver(update)
            except Exception:
                log.exception("bridge update %s for %s was not delivered", update.kind, update.account_id)
            finally:
                self._queue.task_done()

    async def deliver(self, update: JobUpdate) -> None:
        facts = await self._facts_of(update)
        event = job_update_to_event(update, attempt=facts.attempt, order_id=facts.order_id)
        if update.job_id is not None and update.conversation_ref:
            await self._engine.deliver_event(ConversationKey.parse(update.conversation_ref), event)
        else:
            # Device news goes to the conversation waiting for it (pairing), else the latest one.
            await self._engine.deliver_account_event(update.account_id, event)

    async def drain(self) -> None:
        """Wait until every update reported so far is delivered (tests, shutdown)."""
        await self._queue.join()

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker


def install_bridge(container: Core) -> BridgeHub:
    """The hub for ``container``: on the bot database, issuing through the platform, reporting
    to conversations. Include ``bot.bridge.router.bridge_router(hub)`` in the ASGI app."""
    engine = container.engine
    db = Database(container.settings.database_url)
    tokens = ConversationTokens(db, container.store, engine.codec)

    async def facts_of(update: JobUpdate) -> JobFacts:
        if update.job_id is None:
            return JobFacts(None, None)
        async with db.session() as session:
            job = await session.get(BridgeJob, update.job_id)
        if job is None or job.account_id != update.account_id:
            return JobFacts(None, None)
        order_id = job.params.get("order_id")
        return JobFacts(job.attempt, str(order_id) if order_id else None)

    relay = UpdateRelay(engine, facts_of)

    def now() -> datetime:
        moment: datetime = engine.clock.now()
        return moment

    hub = BridgeHub(
        db,
        issuer=PlatformCertificateIssuer(container.platform, tokens),
        so_pins=PlatformSoPinProvider(container.platform, tokens),
        on_job_update=relay,
        clock=now,
        bus=container.bus,
    )
    extra = engine.services.extra
    extra[HUB_KEY] = hub
    extra[RELAY_KEY] = relay
    container.closers.append(db.dispose)
    container.closers.append(relay.close)
    return hub
