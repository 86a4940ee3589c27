"""Test helpers shipped with the bot: drive conversations as transcripts.

``ChatHarness`` runs the real engine on a real store (SQLite file or PostgreSQL URL) with a
``RecordingSender`` in place of a channel, so a test reads like a chat: what the user sends,
what the bot answers. Handlers, channels and support tests all build on it.
"""

from __future__ import annotations

import itertools
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.engine.flow import FlowRegistry
from bot.engine.i18n import Catalog
from bot.engine.interpreter import HomeHandler
from bot.engine.locks import ConversationLocks
from bot.engine.media import MemoryMediaStore, sniff
from bot.engine.messages import ConversationKey, ExternalEvent, Inbound, Option, OutboundMessage, Reply
from bot.engine.outbox import OutboxDispatcher
from bot.engine.runtime import Engine, EngineHooks
from bot.engine.secrets_box import SecretBox
from bot.engine.sqlite_store import SqliteConversationStore
from bot.engine.store import SqlConversationStore
from bot.engine.tables import metadata
from bot.errors import DeliveryFailed
from dbkit.engine import make_engine

ENGINE_LOCALES = Path(__file__).parent / "locales"


class ManualClock:
    def __init__(self, at: datetime | None = None) -> None:
        self.at = at or datetime(2026, 11, 28, 2, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.at

    def advance(self, delta: timedelta) -> None:
        self.at += delta


@dataclass
class RecordingSender:
    """A channel that records what it is asked to send; it can be told to fail."""

    channel: str = "test"
    sent: list[OutboundMessage] = field(default_factory=list)
    failures_to_inject: int = 0
    retryable: bool = True

    async def send(self, message: OutboundMessage) -> None:
        if self.failures_to_inject > 0:
            self.failures_to_inject -= 1
            raise DeliveryFailed("injected failure", retryable=self.retryable)
        self.sent.append(message)

    def replies_for(self, user: str) -> list[Reply]:
        return [m.reply for m in self.sent if m.key.user_id == user]


async def create_schema(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)


class ChatHarness:
    def __init__(
        self,
        engine: Engine,
        dispatcher: OutboxDispatcher,
        sender: RecordingSender,
        clock: ManualClock,
        db: AsyncEngine | None = None,
    ) -> None:
        self.db = db  # the harness's database, disposed of by ``close``
        self.engine = engine
        self.dispatcher = dispatcher
        self.sender = sender
        self.clock = clock
        self.store = engine.store
        self._ids = itertools.count(1)
        # Delivery ids are unique per harness: a second harness on the same database (a
        # "restart") must not have its messages taken for redeliveries of the first one's.
        self._id_prefix = uuid.uuid4().hex[:8]
        self._last: dict[str, list[Reply]] = defaultdict(list)

    @classmethod
    async def create(
        cls,
        *,
        flows: FlowRegistry,
        db_url: str,
        catalog_dirs: Iterable[Path] = (),
        services: Any = None,
        home: HomeHandler | None = None,
        hooks: EngineHooks | None = None,
        clock: ManualClock | None = None,
        channel: str = "test",
        schema: bool = True,
        secret: str = "test-secret",  # noqa: S107 - the test harness key, never a deployment secret
        db: AsyncEngine | None = None,
        locks: ConversationLocks | None = None,
        embedded: bool = False,
    ) -> ChatHarness:
        """``db`` replaces ``db_url`` when the caller built the engine (a PostgreSQL schema of
        its own, say); ``locks`` adds a distributed lock as a multi-worker deployment does;
        ``embedded``: the store of the embedded default (``SqliteConversationStore``, on a
        SQLite file) instead of the SQLAlchemy one every backend has."""
        db = db or make_engine(db_url)
        if schema:
            await create_schema(db)
        clock = clock or ManualClock()
        store: SqlConversationStore | SqliteConversationStore = (
            SqliteConversationStore(db) if embedded else SqlConversationStore(db)
        )
        sender = RecordingSender(channel=channel)
        engine = Engine(
            store=store,
            flows=flows,
            catalog=Catalog([ENGINE_LOCALES, *catalog_dirs], strict=True),
            box=SecretBox(secret),
            media=MemoryMediaStore(now=clock.now),
            services=services,
            clock=clock,
            home=home,
            hooks=hooks,
            locks=locks,
        )
        dispatcher = OutboxDispatcher(store, {channel: sender}, clock, backoff_base=1.0, box=engine.box)
        engine.hooks.after_commit.append(dispatcher.kick)
        return cls(engine, dispatcher, sender, clock, db)

    async def close(self) -> None:
        distributed = self.engine.locks.distributed
        close_lock = getattr(distributed, "close", None)
        if close_lock is not None:
            await close_lock()
        await self.store.close()
        if self.db is not None:
            await self.db.dispose()

    def next_id(self, kind: str) -> str:
        return f"{kind}{self._id_prefix}-{next(self._ids)}"

    def key(self, user: str) -> ConversationKey:
        return ConversationKey(self.sender.channel, "main", user)

    async def _run(self, inbound: Inbound) -> list[Reply]:
        before = len(self.sender.sent)
        await self.engine.handle(inbound)
        await self.dispatcher.drain()
        replies = [m.reply for m in self.sender.sent[before:] if m.key == inbound.key]
        if replies:
            self._last[inbound.key.user_id] = replies
        return replies

    async def say(
        self, text: str, *, user: str = "u1", message_id: str | None = None, lang: str | None = None
    ) -> list[str]:
        inbound = Inbound.text_message(
            self.key(user), message_id or self.next_id("m"), text, at=self.clock.now(), language_hint=lang
        )
        return [r.text for r in await self._run(inbound)]

    async def pushed(self, before: int, user: str = "u1") -> list[Reply]:
        """What reached ``user`` by a push since ``before`` messages were sent (the password
        page logging the chat in, say); its buttons become the ones ``tap`` finds."""
        await self.dispatcher.drain()
        replies = [m.reply for m in self.sender.sent[before:] if m.key == self.key(user)]
        if replies:
            self._last[user] = replies
        return replies

    def options(self, user: str = "u1") -> list[Option]:
        return [o for r in self._last[user] for o in r.options]

    def option(self, label: str, user: str = "u1") -> Option:
        """The option whose label is ``label``, else the first whose label contains it."""
        options = self.options(user)
        for o in options:
            if o.label == label:
                return o
        for o in options:
            if label in o.label:
                return o
        raise AssertionError(f"no option with {label!r}; have {[o.label for o in self.options(user)]}")

    async def tap(self, label: str, *, user: str = "u1", token: str | None = None) -> list[str]:
        chosen = token or self.option(label, user).token
        inbound = Inbound.choice(self.key(user), self.next_id("c"), chosen, at=self.clock.now())
        return [r.text for r in await self._run(inbound)]

    async def upload(
        self, data: bytes, filename: str = "scan.png", *, user: str = "u1", content_type: str | None = None
    ) -> list[str]:
        file = await self.engine.media.put(data, filename=filename, content_type=content_type or sniff(data))
        inbound = Inbound.upload(self.key(user), self.next_id("f"), file, at=self.clock.now())
        return [r.text for r in await self._run(inbound)]

    async def event(self, event: ExternalEvent, *, user: str = "u1") -> list[str]:
        before = len(self.sender.sent)
        await self.engine.deliver_event(self.key(user), event)
        await self.dispatcher.drain()
        return [m.reply.text for m in self.sender.sent[before:] if m.key.user_id == user]

    def transcript(self, user: str = "u1") -> list[str]:
        return [r.text for r in self.sender.replies_for(user)]
