"""Durable conversation storage: state, inbound receipts and the outbox, in one transaction.

``ConversationStore`` is the contract; ``SqlConversationStore`` implements it on SQLite and on
PostgreSQL through SQLAlchemy Core (tests/contract runs one suite against both). The engine
commits a conversation's new state, the receipt of the inbound message that produced it and
the replies it queued in ONE transaction, guarded by the version it read: that is what makes a
crash lose nothing the user was told and a redelivery see the same reply.
"""

# Over 600 lines: the storage role protocols and their one SQLAlchemy implementation for
# PostgreSQL (and plain SQLite); the contract suite runs every store through these protocols, so
# keeping protocol and reference implementation side by side makes drift visible.

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.engine import json_text
from bot.engine.messages import ConversationKey, Origin, OutboundMessage, Reply
from bot.engine.ports import Clock, SystemClock
from bot.engine.tables import UNDELIVERED_SQL, conversations, event_cursor, inbound_receipts, outbox
from bot.errors import StorageError, VersionConflict

if TYPE_CHECKING:
    from bot.engine.in_band import InBandCommit

log = logging.getLogger("sealbot.store")


class OutboxStatus:
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    HELD = "held"
    PASSIVE = "passive"
    PARKED = "parked"  # kept by the channel until the user writes again (``DeliveryParked``)


# Not delivered (yet), as the support view labels them.
UNDELIVERED = {
    OutboxStatus.HELD: "held",
    OutboxStatus.PENDING: "queued",
    OutboxStatus.SENDING: "queued",
}


@dataclass(frozen=True)
class WriterUsage:
    """Where a store's own SQLite work ran: ``busy_seconds`` its writer thread spent running
    batches (inside SQLite, running Python, or waiting for the GIL to do either) and
    ``cpu_seconds`` on a CPU; ``loop_seconds`` the batches run on the event loop's own thread
    took. Busy time near the wall clock's is a saturated writer thread; busy time far above CPU
    time is time spent waiting for the GIL while the event loop runs Python."""

    busy_seconds: float
    cpu_seconds: float
    loop_seconds: float = 0.0

    def __sub__(self, earlier: WriterUsage) -> WriterUsage:
        return WriterUsage(
            self.busy_seconds - earlier.busy_seconds,
            self.cpu_seconds - earlier.cpu_seconds,
            self.loop_seconds - earlier.loop_seconds,
        )


class Snapshot:
    """What ``load`` read: the state (None for a new conversation) and, for a duplicate
    delivery, the ids of the replies the first delivery produced.

    A store that reads the state as JSON text hands it over as it is (``from_text``) and it is
    decoded when ``state`` is first read: the engine usually takes the state it committed
    itself instead (``Engine._load_state``), and decoding it for nothing cost 2-3 us of a
    message's 150-190 on the embedded default."""

    __slots__ = ("_state", "_text", "conversation_id", "duplicate_of", "version")

    def __init__(
        self,
        conversation_id: int | None,
        version: int,
        state: dict[str, Any] | None,
        duplicate_of: tuple[int, ...] | None = None,
    ) -> None:
        self.conversation_id = conversation_id
        self.version = version
        self.duplicate_of = duplicate_of
        self._state = state
        self._text: str | None = None

    @classmethod
    def from_text(
        cls, conversation_id: int, version: int, text: str, duplicate_of: tuple[int, ...] | None
    ) -> Snapshot:
        snapshot = cls(conversation_id, version, None, duplicate_of)
        snapshot._text = text
        return snapshot

    @property
    def exists(self) -> bool:
        """Whether the conversation was stored before (else this message starts it)."""
        return self.conversation_id is not None

    @property
    def state(self) -> dict[str, Any] | None:
        if self._text is not None:
            self._state, self._text = json_text.loads(self._text), None
        return self._state

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Snapshot):
            return NotImplemented
        return (self.conversation_id, self.version, self.state, self.duplicate_of) == (
            other.conversation_id,
            other.version,
            other.state,
            other.duplicate_of,
        )

    __hash__ = None  # type: ignore[assignment]  # equal by content, which is mutable

    def __repr__(self) -> str:
        return (
            f"Snapshot(conversation_id={self.conversation_id!r}, version={self.version!r},"
            f" duplicate_of={self.duplicate_of!r})"
        )


@dataclass(slots=True)  # not frozen: built twice for every reply (see ``Commit``)
class QueuedReply:
    reply: Reply
    origin: Origin
    not_before: datetime | None = None
    # The unmasked text for the recipient (``reply.text`` is the masked copy); the runtime
    # seals it into ``reply.sealed`` before anything is stored.
    private_text: str | None = None
    # The unmasked button labels, one per option of ``reply`` (a suggestion 使用 <the owner's
    # phone>): sealed with the text, never stored in clear.
    private_labels: tuple[str, ...] | None = None


@dataclass(frozen=True)
class SideWrite:
    """A write to another module's table that belongs to the handling of one message: the
    nonce a WeChat callback used, the customer-service allowance it opened. The store runs it
    in the handling's own transaction, so a message costs one write transaction, not one per
    bookkeeping row. A prepared statement (``sa.bindparam`` placeholders) and its values, as
    ``TableWrites.write`` takes them."""

    statement: sa.Insert | sa.Update | sa.Delete
    params: Mapping[str, Any]


@dataclass(slots=True)
class Commit:
    """Everything one handled message changes. Not frozen, though nobody changes it: it is
    built for every message, and a frozen dataclass's ``__init__`` (``object.__setattr__`` per
    field) took 2.6 us for these thirteen fields against 0.9."""

    state: dict[str, Any]
    owner: str
    platform_account_id: str | None
    flow: str | None
    wait_deadline: datetime | None
    message_id: str | None  # None for proactive pushes that have no inbound to dedupe
    inbound_kind: str
    inbound_body: dict[str, Any]
    replies: Sequence[QueuedReply]
    in_reply_to: str | None
    touched_by_user: bool
    side_writes: Sequence[SideWrite] = ()
    # replies the request's own response may carry (see ``bot.engine.in_band``)
    in_band: InBandCommit | None = None


@dataclass(frozen=True)
class ConversationRow:
    conversation_id: int
    key: ConversationKey
    owner: str
    flow: str | None
    platform_account_id: str | None
    updated_at: datetime
    last_inbound_at: datetime | None
    state: dict[str, Any]


class Conversations(Protocol):
    """The handling transaction and what reads conversations (the engine, events, timers)."""

    async def load(self, key: ConversationKey, message_id: str | None) -> Snapshot: ...

    async def commit(
        self, key: ConversationKey, snapshot: Snapshot, change: Commit, now: datetime
    ) -> list[OutboundMessage]: ...

    async def owner_of(self, key: ConversationKey) -> str: ...

    async def owners_of(self, keys: Sequence[ConversationKey]) -> dict[ConversationKey, str]: ...

    async def get(self, key: ConversationKey) -> ConversationRow | None: ...

    async def keys_for_account(self, platform_account_id: str) -> list[ConversationKey]: ...

    async def due_waits(self, now: datetime, limit: int) -> list[ConversationKey]: ...

    async def close(self) -> None: ...


class Outbox(Protocol):
    """Queued replies on their way out: the dispatcher's claims and marks, passive claims."""

    async def outbound(self, ids: Sequence[int]) -> list[OutboundMessage]: ...

    async def claim_due(self, now: datetime, *, limit: int, lease: timedelta) -> list[OutboundMessage]: ...

    async def reclaim_leases(self) -> int: ...

    async def mark_sent_many(self, outbox_ids: Sequence[int], now: datetime) -> None: ...

    async def mark_retry(self, outbox_id: int, next_attempt_at: datetime, error: str) -> None: ...

    async def mark_final(self, outbox_id: int, status: str, error: str | None) -> None: ...

    async def claim_passive(
        self, ids: Sequence[int], *, now: Clock | None = None, until: datetime | None = None
    ) -> list[OutboundMessage]: ...

    async def release_passive(self, ids: Sequence[int], now: datetime) -> int: ...

    async def release_held(self, key: ConversationKey) -> int: ...

    async def close(self) -> None: ...


class Transcripts(Protocol):
    """What the support view and the web chat read about one conversation."""

    async def delivered(self, key: ConversationKey, after_id: int, limit: int) -> list[OutboundMessage]: ...

    async def undelivered(self, key: ConversationKey, limit: int) -> list[tuple[OutboundMessage, str]]: ...

    async def inbound_log(self, key: ConversationKey, limit: int) -> list[dict[str, Any]]: ...

    async def close(self) -> None: ...


class Cursors(Protocol):
    """Named positions in outside feeds (the platform's event feed)."""

    async def cursor(self, name: str) -> int: ...

    async def set_cursor(self, name: str, position: int, now: datetime) -> None: ...

    async def close(self) -> None: ...


class TableWrites(Protocol):
    """Writes to other modules' tables in the bot database (a channel's nonce ledger, delivery
    records, quota), batched with the engine's own: on the embedded SQLite default they join
    the same group-commit transactions instead of racing them for the file's one write lock.
    A statement is one atomic write; refusals are expressed in SQL (``ON CONFLICT DO
    NOTHING``, a ``WHERE``) and read from the returned row count.

    On the message path a module builds its statement once, with ``sa.bindparam`` placeholders,
    and passes each call's values as ``params``: compiling a statement costs more than the
    write itself (a quarter of the WeChat edge's CPU under load), and a store may then compile
    each such statement once."""

    async def write(
        self, statement: sa.Insert | sa.Update | sa.Delete, params: Mapping[str, Any] | None = None
    ) -> int: ...

    async def exists(self, statement: sa.Select[Any], params: Mapping[str, Any]) -> bool:
        """Whether a prepared SELECT finds a row: the one check on the message path that must
        see other workers' writes (a waiting customer-service backlog). The embedded store
        reads it on its writer's connection, between batches: an async pool checkout cost
        more than the query (a seventh of the WeChat edge's CPU under load)."""
        ...

    async def close(self) -> None: ...


class ConversationStore(Conversations, Outbox, Transcripts, Cursors, TableWrites, Protocol):
    """Every role at once: what the composition root builds (one per database) and hands,
    typed by role, to the parts that need it."""

    # write transactions committed so far (``/metrics``): with group commit, fewer than the
    # operations written
    @property
    def write_transactions(self) -> int: ...

    # where its own SQLite work ran so far (``/metrics``); zero for a store that has none
    def writer_usage(self) -> WriterUsage: ...


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything in the engine is UTC-aware.
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# pg_advisory_lock(PRESENCE_LOCKS, worker): held by each live worker on a connection of its own,
# so that PostgreSQL itself says which workers died (their locks go with their sessions). The
# two-key form is a key space apart from the conversations' single-key locks.
PRESENCE_LOCKS = 0x5EA1B07


def _presence_key(worker_id: str) -> int:
    return int(worker_id[:8], 16) - 2**31  # a signed int4 from the random id


# The handling transaction's statements, built once. A statement built per call has its cache
# key computed per call (SQLAlchemy walks it to find the compiled form): on the PostgreSQL
# WeChat path that walk and the building were about a seventh of the service's CPU. Values
# travel as parameters (``b_`` names: a bind named after a column is reserved in SET/VALUES).
_KEY_MATCHES = sa.and_(  # the conversation of ``_key_params(key)``
    conversations.c.channel == sa.bindparam("b_channel", type_=sa.String),
    conversations.c.account == sa.bindparam("b_account", type_=sa.String),
    conversations.c.user_id == sa.bindparam("b_user_id", type_=sa.String),
)
_LOAD = (
    sa.select(
        conversations.c.id, conversations.c.version, conversations.c.state, inbound_receipts.c.reply_ids
    )
    .select_from(
        conversations.outerjoin(
            inbound_receipts,
            sa.and_(
                inbound_receipts.c.conversation_id == conversations.c.id,
                # no delivery id (NULL) matches no receipt
                inbound_receipts.c.message_id == sa.bindparam("b_message_id", type_=sa.String),
            ),
        )
    )
    .where(_KEY_MATCHES)
)
_OWNER = sa.select(conversations.c.owner).where(_KEY_MATCHES)
_CONVERSATION = sa.select(conversations).where(_KEY_MATCHES)
# What reached the user (sent, or carried in a passive answer): the web chat polls it.
_DELIVERED = (
    sa.select(outbox)
    .join(conversations, conversations.c.id == outbox.c.conversation_id)
    .where(
        _KEY_MATCHES,
        outbox.c.id > sa.bindparam("b_after", type_=sa.Integer),
        outbox.c.status.in_([OutboxStatus.SENT, OutboxStatus.PASSIVE]),
    )
    .order_by(outbox.c.id)
    .limit(sa.bindparam("b_limit", type_=sa.Integer))
)
# INSERT and UPDATE without ``.values()``: the columns set are the parameters' keys.
_INSERT_CONVERSATION = conversations.insert().returning(conversations.c.id)
_UPDATE_CONVERSATION = conversations.update().where(
    conversations.c.id == sa.bindparam("b_id", type_=sa.Integer),
    conversations.c.version == sa.bindparam("b_version", type_=sa.Integer),
)
# Every reply of a message in one statement; ids come back in the order the replies were given.
_INSERT_REPLIES = outbox.insert().returning(outbox.c.id, sort_by_parameter_order=True)
_INSERT_RECEIPT = inbound_receipts.insert()
_IN_FLIGHT = (
    sa.select(outbox.c.id)
    .where(
        outbox.c.conversation_id == sa.bindparam("b_conversation_id", type_=sa.Integer),
        sa.or_(
            outbox.c.status == OutboxStatus.SENDING,
            sa.and_(outbox.c.status == OutboxStatus.PENDING, outbox.c.in_reply_to.is_not(None)),
        ),
    )
    .limit(1)
)
_IN_FLIGHT_BEFORE = _IN_FLIGHT.where(outbox.c.id < sa.bindparam("b_before", type_=sa.Integer))
# The dispatcher's statements, as above.
_NOW = sa.bindparam("b_now", type_=sa.DateTime(timezone=True))
_OLDER = outbox.alias("older")
_DUE = sa.or_(
    sa.and_(outbox.c.status == OutboxStatus.PENDING, outbox.c.next_attempt_at <= _NOW),
    sa.and_(outbox.c.status == OutboxStatus.SENDING, outbox.c.lease_until <= _NOW),
)
# Only rows that are due AND the oldest undelivered of their conversation (which keeps the
# order): a window over all pending rows would fill up with replies held for a passive answer,
# or pushes scheduled for later, and starve the due ones.
_CLAIM_CANDIDATES = (
    sa.select(outbox)
    .where(
        _DUE,
        # not a conversation with a message on its way (its lease still runs)
        outbox.c.conversation_id.not_in(
            sa.select(outbox.c.conversation_id)
            .where(outbox.c.status == OutboxStatus.SENDING, outbox.c.lease_until > _NOW)
            .scalar_subquery()
        ),
        # the oldest undelivered of its conversation (``tables.UNDELIVERED_SQL``, literally)
        ~sa.exists().where(
            _OLDER.c.conversation_id == outbox.c.conversation_id,
            _OLDER.c.id < outbox.c.id,
            sa.text(f"older.{UNDELIVERED_SQL}"),
        ),
    )
    .order_by(outbox.c.id)
    .limit(sa.bindparam("b_limit", type_=sa.Integer))
)
# Claims the chosen rows that are still due (another worker may have claimed one since).
_CLAIM = (
    outbox.update()
    .where(outbox.c.id.in_(sa.bindparam("b_ids", expanding=True)), _DUE)
    .values(
        status=OutboxStatus.SENDING,
        lease_until=sa.bindparam("b_lease_until", type_=sa.DateTime(timezone=True)),
        leased_by=sa.bindparam("b_worker", type_=sa.String),
        attempts=outbox.c.attempts + 1,
    )
    .returning(outbox.c.id, outbox.c.attempts)
)
_MARK_SENT = (
    outbox.update()
    .where(outbox.c.id.in_(sa.bindparam("b_ids", expanding=True)))
    .values(
        status=OutboxStatus.SENT,
        sent_at=sa.bindparam("b_sent_at", type_=sa.DateTime(timezone=True)),
        lease_until=None,
        last_error=None,
    )
)
_OWNERS = sa.select(
    conversations.c.channel, conversations.c.account, conversations.c.user_id, conversations.c.owner
).where(
    sa.tuple_(conversations.c.channel, conversations.c.account, conversations.c.user_id).in_(
        sa.bindparam("b_keys", expanding=True)
    )
)


def _key_params(key: ConversationKey) -> dict[str, str]:
    return {"b_channel": key.channel, "b_account": key.account, "b_user_id": key.user_id}


class SqlConversationStore:
    def __init__(self, engine: AsyncEngine, *, worker_id: str | None = None) -> None:
        self.engine = engine
        # names this process's outbox leases (a new one at every start)
        self.worker_id = worker_id or uuid.uuid4().hex
        self._presence: AsyncConnection | None = None
        # SQLite has one writer per database: connections that race for it spin in its busy
        # handler (sleeping up to 100 ms a turn). Queueing this process's writers on a lock
        # instead keeps the file's write lock busy and nobody asleep. PostgreSQL writers need
        # no such thing; row locks and the version check order them.
        self._write_lock = asyncio.Lock() if engine.dialect.name == "sqlite" else None
        self._transactions = 0

    @property
    def write_transactions(self) -> int:
        return self._transactions

    def writer_usage(self) -> WriterUsage:
        # Statements run on the event loop through the driver; there is no writer thread.
        return WriterUsage(0.0, 0.0)

    async def close(self) -> None:
        """The engine is the caller's (the container disposes of it with the other tables);
        the presence connection is this store's, and closing it says the worker has gone."""
        if self._presence is not None:
            presence, self._presence = self._presence, None
            with contextlib.suppress(sa.exc.SQLAlchemyError, OSError):
                # the connection goes back to the pool, which would keep a session lock alive
                await presence.execute(sa.text("SELECT pg_advisory_unlock_all()"))
            with contextlib.suppress(sa.exc.SQLAlchemyError, OSError):
                await presence.close()

    # The one boundary where driver errors become the engine's: every read and write of this
    # store goes through ``_reading`` or ``_writing``.

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[AsyncConnection]:
        try:
            async with self.engine.connect() as conn:
                yield conn
        except sa.exc.SQLAlchemyError as exc:
            raise StorageError(f"conversation store read failed: {exc.__class__.__name__}") from exc

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncConnection]:
        try:
            if self._write_lock is None:
                async with self.engine.begin() as conn:
                    yield conn
            else:
                async with self._write_lock, self.engine.begin() as conn:
                    yield conn
            self._transactions += 1
        except sa.exc.IntegrityError as exc:
            # A concurrent first message created the row, or the same delivery id was committed
            # by another worker: both mean "someone else won", and the caller retries.
            raise VersionConflict(str(exc.params)[:200]) from exc
        except sa.exc.SQLAlchemyError as exc:
            raise StorageError(f"conversation store write failed: {exc.__class__.__name__}") from exc

    # ---- the handling transaction -------------------------------------------------------------

    async def load(self, key: ConversationKey, message_id: str | None) -> Snapshot:
        # One statement: the state, and the receipt of this delivery if it came before.
        async with self._reading() as conn:
            row = (await conn.execute(_LOAD, {**_key_params(key), "b_message_id": message_id})).first()
        if row is None:
            return Snapshot(None, 0, None)
        duplicate = None if row.reply_ids is None else tuple(row.reply_ids)
        return Snapshot(row.id, row.version, row.state, duplicate)

    async def commit(
        self, key: ConversationKey, snapshot: Snapshot, change: Commit, now: datetime
    ) -> list[OutboundMessage]:
        try:
            async with self._writing() as conn:
                conv_id = await self._write_state(conn, key, snapshot, change, now)
                for side in change.side_writes:
                    await conn.execute(side.statement, dict(side.params))
                carry = await self._carried_count(conn, conv_id, snapshot, change)
                messages = await self._queue(conn, conv_id, key, change, now, carry)
                if change.in_band is not None:
                    record = change.in_band.plan.record
                    if carry and record is not None:
                        await conn.execute(record.statement, dict(record.params))
                    change.in_band.window.decide([m.outbox_id for m in messages[:carry]])
                if change.message_id is not None:
                    await conn.execute(
                        _INSERT_RECEIPT,
                        {
                            "conversation_id": conv_id,
                            "message_id": change.message_id,
                            "kind": change.inbound_kind,
                            "body": change.inbound_body,
                            "reply_ids": [m.outbox_id for m in messages],
                            "received_at": now,
                        },
                    )
                return messages
        except VersionConflict as exc:
            raise VersionConflict(str(key)) from exc

    async def _write_state(
        self, conn: AsyncConnection, key: ConversationKey, snapshot: Snapshot, change: Commit, now: datetime
    ) -> int:
        values: dict[str, Any] = {
            "state": change.state,
            "owner": change.owner,
            "platform_account_id": change.platform_account_id,
            "flow": change.flow,
            "wait_deadline": change.wait_deadline,
            "updated_at": now,
        }
        if change.touched_by_user:
            values["last_inbound_at"] = now
        if snapshot.conversation_id is None:
            created = await conn.execute(
                _INSERT_CONVERSATION,
                {
                    "channel": key.channel,
                    "account": key.account,
                    "user_id": key.user_id,
                    "version": 1,
                    "created_at": now,
                    **values,
                },
            )
            return int(created.scalar_one())
        result = await conn.execute(
            _UPDATE_CONVERSATION,
            {
                "b_id": snapshot.conversation_id,
                "b_version": snapshot.version,
                "version": snapshot.version + 1,
                **values,
            },
        )
        if result.rowcount != 1:
            raise VersionConflict(str(key))
        return snapshot.conversation_id

    async def _carried_count(
        self, conn: AsyncConnection, conv_id: int, snapshot: Snapshot, change: Commit
    ) -> int:
        """How many leading replies go in the request's response (``Commit.in_band``): none
        after its window closed, nor while an earlier answer of the conversation is still on
        its way. Decided inside the transaction, after the write lock was granted."""
        carry = change.in_band.claimable(len(change.replies)) if change.in_band is not None else 0
        earlier = snapshot.conversation_id is not None and carry > 0
        if earlier and await self._earlier_in_flight(conn, conv_id):
            return 0
        return carry

    async def _queue(
        self,
        conn: AsyncConnection,
        conv_id: int,
        key: ConversationKey,
        change: Commit,
        now: datetime,
        carried: int = 0,
    ) -> list[OutboundMessage]:
        if not change.replies:
            return []
        rows = [
            {
                "conversation_id": conv_id,
                "channel": key.channel,
                "origin": queued.origin.value,
                "payload": {"key": str(key), "reply": queued.reply.to_dict()},
                "status": OutboxStatus.PASSIVE if index < carried else OutboxStatus.PENDING,
                "attempts": 0,
                "next_attempt_at": queued.not_before or now,
                "in_reply_to": change.in_reply_to,
                "created_at": now,
            }
            for index, queued in enumerate(change.replies)
        ]
        ids = (await conn.execute(_INSERT_REPLIES, rows)).scalars().all()
        return [
            OutboundMessage(int(outbox_id), key, queued.reply, queued.origin, now, change.in_reply_to)
            for outbox_id, queued in zip(ids, change.replies, strict=True)
        ]

    # ---- the outbox -------------------------------------------------------------------------

    @staticmethod
    def _message(row: Any, attempt: int | None = None) -> OutboundMessage:
        return OutboundMessage(
            outbox_id=row.id,
            key=ConversationKey.parse(row.payload["key"]),
            reply=Reply.from_dict(row.payload["reply"]),
            origin=Origin(row.origin),
            created_at=_aware(row.created_at) or datetime.now(UTC),
            in_reply_to=row.in_reply_to,
            attempt=attempt if attempt is not None else max(1, row.attempts),
        )

    async def outbound(self, ids: Sequence[int]) -> list[OutboundMessage]:
        if not ids:
            return []
        async with self._reading() as conn:
            rows = (
                await conn.execute(sa.select(outbox).where(outbox.c.id.in_(list(ids))).order_by(outbox.c.id))
            ).all()
        return [self._message(r) for r in rows]

    async def claim_due(self, now: datetime, *, limit: int, lease: timedelta) -> list[OutboundMessage]:
        """Claim due messages, oldest first, at most one per conversation at a time so that a
        conversation's messages leave in order; a crashed worker's lease expires and another
        worker takes the message over."""
        async with self._writing() as conn:
            candidates = (await conn.execute(_CLAIM_CANDIDATES, {"b_now": now, "b_limit": limit * 4})).all()
            # the oldest due row of each conversation, ``limit`` at most
            chosen: dict[int, Any] = {}
            conversations_chosen: set[int] = set()
            for row in candidates:
                if len(chosen) >= limit:
                    break
                if row.conversation_id not in conversations_chosen:
                    conversations_chosen.add(row.conversation_id)
                    chosen[row.id] = row
            if not chosen:
                return []
            claimed = (
                await conn.execute(
                    _CLAIM,
                    {
                        "b_ids": list(chosen),
                        "b_now": now,
                        "b_lease_until": now + lease,
                        "b_worker": self.worker_id,
                    },
                )
            ).all()
        attempts = {row.id: row.attempts for row in claimed}
        return [self._message(row, attempts[row.id]) for row in chosen.values() if row.id in attempts]

    async def mark_sent_many(self, outbox_ids: Sequence[int], now: datetime) -> None:
        if not outbox_ids:
            return
        async with self._writing() as conn:
            await conn.execute(_MARK_SENT, {"b_ids": list(outbox_ids), "b_sent_at": now})

    async def owners_of(self, keys: Sequence[ConversationKey]) -> dict[ConversationKey, str]:
        """Who owns each conversation (``bot`` for one never stored)."""
        found = {key: "bot" for key in keys}
        if not keys:
            return found
        async with self._reading() as conn:
            rows = (
                await conn.execute(_OWNERS, {"b_keys": [(k.channel, k.account, k.user_id) for k in keys]})
            ).all()
        for row in rows:
            found[ConversationKey(row.channel, row.account, row.user_id)] = row.owner
        return found

    async def mark_retry(self, outbox_id: int, next_attempt_at: datetime, error: str) -> None:
        async with self._writing() as conn:
            await conn.execute(
                outbox.update()
                .where(outbox.c.id == outbox_id)
                .values(
                    status=OutboxStatus.PENDING,
                    next_attempt_at=next_attempt_at,
                    lease_until=None,
                    last_error=error,
                )
            )

    async def mark_final(self, outbox_id: int, status: str, error: str | None) -> None:
        async with self._writing() as conn:
            await conn.execute(
                outbox.update()
                .where(outbox.c.id == outbox_id)
                .values(status=status, lease_until=None, last_error=error)
            )

    async def claim_passive(
        self, ids: Sequence[int], *, now: Clock | None = None, until: datetime | None = None
    ) -> list[OutboundMessage]:
        """Take messages out of the outbox because a synchronous answer carries them.

        Only in order and only in time: the claim stops at the first message the dispatcher
        already took, claims nothing while an earlier answer of the conversation is still on
        its way (a later passive reply must not overtake it), and nothing once ``until`` has
        passed by ``now``, read inside the transaction, after the write lock was granted."""
        if not ids:
            return []
        wanted = list(ids)
        async with self._writing() as conn:
            if until is not None and (now or SystemClock()).now() >= until:
                return []
            first = (
                await conn.execute(sa.select(outbox.c.conversation_id).where(outbox.c.id == wanted[0]))
            ).scalar()
            if first is None or await self._earlier_in_flight(conn, first, wanted[0]):
                return []
            taken: list[int] = []
            for outbox_id in wanted:
                result = await conn.execute(
                    outbox.update()
                    .where(outbox.c.id == outbox_id, outbox.c.status == OutboxStatus.PENDING)
                    .values(status=OutboxStatus.PASSIVE)
                )
                if result.rowcount != 1:
                    break
                taken.append(outbox_id)
        return await self.outbound(taken)

    @staticmethod
    async def _earlier_in_flight(
        conn: AsyncConnection, conversation_id: int, before: int | None = None
    ) -> bool:
        """Whether an answer of the conversation (older than outbox id ``before``, if given) is
        still on its way: a passive reply must not overtake it."""
        if before is None:
            found = await conn.execute(_IN_FLIGHT, {"b_conversation_id": conversation_id})
        else:
            found = await conn.execute(
                _IN_FLIGHT_BEFORE, {"b_conversation_id": conversation_id, "b_before": before}
            )
        return found.first() is not None

    async def release_passive(self, ids: Sequence[int], now: datetime) -> int:
        """Replies held for a passive answer that will not carry them: due at once."""
        if not ids:
            return 0
        async with self._writing() as conn:
            result = await conn.execute(
                outbox.update()
                .where(
                    outbox.c.id.in_(list(ids)),
                    outbox.c.status == OutboxStatus.PENDING,
                    outbox.c.next_attempt_at > now,
                )
                .values(next_attempt_at=now)
            )
            return int(result.rowcount)

    async def reclaim_leases(self) -> int:
        """What a dead worker was sending goes back to pending at once instead of when its
        lease runs out (60 s): after ``kill -9`` and a restart the replies leave in seconds.

        On SQLite one process owns the file, so every lease found is a dead process's. On
        PostgreSQL several workers share the outbox: each holds an advisory lock named by its
        ``worker_id`` for as long as it runs, and only the leases of workers whose lock can be
        taken (their session ended with them) are taken back. Called at start and then
        periodically by the dispatcher."""
        if self.engine.dialect.name != "postgresql":
            async with self._writing() as conn:
                result = await conn.execute(
                    outbox.update()
                    .where(outbox.c.status == OutboxStatus.SENDING)
                    .values(status=OutboxStatus.PENDING, lease_until=None, leased_by=None)
                )
                return int(result.rowcount)
        presence = await self._present()
        async with self._reading() as conn:
            leasers: list[str] = list(
                (
                    await conn.execute(
                        sa.select(outbox.c.leased_by)
                        .where(
                            outbox.c.status == OutboxStatus.SENDING,
                            outbox.c.leased_by.is_not(None),
                            outbox.c.leased_by != self.worker_id,
                        )
                        .distinct()
                    )
                ).scalars()
            )
        reclaimed = 0
        for leaser in leasers:
            args = {"space": PRESENCE_LOCKS, "key": _presence_key(leaser)}
            try:
                gone = (
                    await presence.execute(sa.text("SELECT pg_try_advisory_lock(:space, :key)"), args)
                ).scalar()
            except sa.exc.SQLAlchemyError as exc:
                raise StorageError(f"presence check failed: {exc.__class__.__name__}") from exc
            if not gone:
                continue  # that worker is alive: its leases are its own
            try:
                async with self._writing() as conn:
                    result = await conn.execute(
                        outbox.update()
                        .where(outbox.c.status == OutboxStatus.SENDING, outbox.c.leased_by == leaser)
                        .values(status=OutboxStatus.PENDING, lease_until=None, leased_by=None)
                    )
                    reclaimed += int(result.rowcount)
            finally:
                with contextlib.suppress(sa.exc.SQLAlchemyError):
                    await presence.execute(sa.text("SELECT pg_advisory_unlock(:space, :key)"), args)
        return reclaimed

    async def _present(self) -> AsyncConnection:
        """This worker's presence: its advisory lock, on a connection kept for it. A lost
        connection (the server restarted) is opened again and the lock taken again."""
        if self._presence is not None:
            try:
                await self._presence.execute(sa.text("SELECT 1"))
                return self._presence
            except sa.exc.SQLAlchemyError:
                log.warning("outbox presence connection lost; announcing this worker again")
                with contextlib.suppress(sa.exc.SQLAlchemyError, OSError):
                    await self._presence.close()
                self._presence = None
        try:
            presence = await self.engine.connect()
            # the lock belongs to the session; autocommit keeps no transaction open beside it
            await presence.execution_options(isolation_level="AUTOCOMMIT")
            await presence.execute(
                sa.text("SELECT pg_advisory_lock(:space, :key)"),
                {"space": PRESENCE_LOCKS, "key": _presence_key(self.worker_id)},
            )
        except sa.exc.SQLAlchemyError as exc:
            raise StorageError(f"presence lock failed: {exc.__class__.__name__}") from exc
        self._presence = presence
        return presence

    async def release_held(self, key: ConversationKey) -> int:
        """Discard bot messages held while staff owned the conversation (they are stale)."""
        row = await self.get(key)
        if row is None:
            return 0
        async with self._writing() as conn:
            result = await conn.execute(
                outbox.update()
                .where(outbox.c.conversation_id == row.conversation_id, outbox.c.status == OutboxStatus.HELD)
                .values(status=OutboxStatus.FAILED, last_error="held while staff owned the conversation")
            )
            return int(result.rowcount)

    # ---- queries ------------------------------------------------------------------------------

    async def owner_of(self, key: ConversationKey) -> str:
        async with self._reading() as conn:
            owner = (await conn.execute(_OWNER, _key_params(key))).scalar()
        return str(owner) if owner is not None else "bot"

    async def get(self, key: ConversationKey) -> ConversationRow | None:
        async with self._reading() as conn:
            row = (await conn.execute(_CONVERSATION, _key_params(key))).first()
        if row is None:
            return None
        return ConversationRow(
            conversation_id=row.id,
            key=key,
            owner=row.owner,
            flow=row.flow,
            platform_account_id=row.platform_account_id,
            updated_at=_aware(row.updated_at) or datetime.now(UTC),
            last_inbound_at=_aware(row.last_inbound_at),
            state=row.state,
        )

    async def keys_for_account(self, platform_account_id: str) -> list[ConversationKey]:
        """The chat identities bound to an account, most recently active first."""
        async with self._reading() as conn:
            rows = (
                await conn.execute(
                    sa.select(conversations.c.channel, conversations.c.account, conversations.c.user_id)
                    .where(conversations.c.platform_account_id == platform_account_id)
                    .order_by(conversations.c.last_inbound_at.desc().nulls_last(), conversations.c.id.desc())
                )
            ).all()
        return [ConversationKey(r.channel, r.account, r.user_id) for r in rows]

    async def due_waits(self, now: datetime, limit: int) -> list[ConversationKey]:
        async with self._reading() as conn:
            rows = (
                await conn.execute(
                    sa.select(conversations.c.channel, conversations.c.account, conversations.c.user_id)
                    .where(conversations.c.wait_deadline.is_not(None), conversations.c.wait_deadline <= now)
                    .order_by(conversations.c.wait_deadline)
                    .limit(limit)
                )
            ).all()
        return [ConversationKey(r.channel, r.account, r.user_id) for r in rows]

    async def delivered(self, key: ConversationKey, after_id: int, limit: int) -> list[OutboundMessage]:
        """Messages that reached the user (sent or carried passively), for transcripts and the
        web chat's polling."""
        async with self._reading() as conn:
            rows = (
                await conn.execute(_DELIVERED, {**_key_params(key), "b_after": after_id, "b_limit": limit})
            ).all()
        return [self._message(r) for r in rows]

    async def undelivered(self, key: ConversationKey, limit: int) -> list[tuple[OutboundMessage, str]]:
        """Messages not delivered (yet), with how far they got: ``queued`` or ``held``."""
        async with self._reading() as conn:
            rows = (
                await conn.execute(
                    sa.select(outbox)
                    .join(conversations, conversations.c.id == outbox.c.conversation_id)
                    .where(_KEY_MATCHES, outbox.c.status.in_(list(UNDELIVERED)))
                    .order_by(outbox.c.id)
                    .limit(limit),
                    _key_params(key),
                )
            ).all()
        return [(self._message(r), UNDELIVERED[r.status]) for r in rows]

    async def inbound_log(self, key: ConversationKey, limit: int) -> list[dict[str, Any]]:
        async with self._reading() as conn:
            rows = (
                await conn.execute(
                    sa.select(inbound_receipts)
                    .join(conversations, conversations.c.id == inbound_receipts.c.conversation_id)
                    .where(_KEY_MATCHES)
                    .order_by(inbound_receipts.c.id.desc())
                    .limit(limit),
                    _key_params(key),
                )
            ).all()
        return [
            {
                "id": r.id,
                "message_id": r.message_id,
                "kind": r.kind,
                "body": r.body,
                "at": _aware(r.received_at),
            }
            for r in reversed(rows)
        ]

    async def cursor(self, name: str) -> int:
        async with self._reading() as conn:
            value = (
                await conn.execute(sa.select(event_cursor.c.position).where(event_cursor.c.name == name))
            ).scalar()
        return int(value or 0)

    async def write(
        self, statement: sa.Insert | sa.Update | sa.Delete, params: Mapping[str, Any] | None = None
    ) -> int:
        async with self._writing() as conn:
            # SQLAlchemy's own compiled cache serves repeated statements here
            result = await conn.execute(statement, dict(params) if params else None)
            return int(result.rowcount)

    async def exists(self, statement: sa.Select[Any], params: Mapping[str, Any]) -> bool:
        async with self._reading() as conn:
            return (await conn.execute(statement.limit(1), dict(params))).first() is not None

    async def set_cursor(self, name: str, position: int, now: datetime) -> None:
        """Move a cursor forward (never back). One upsert, so two workers creating the same
        cursor at once do not collide on its key."""
        insert = insert_for(self.engine.dialect.name)
        statement = insert(event_cursor).values(name=name, position=position, updated_at=now)
        statement = statement.on_conflict_do_update(
            index_elements=[event_cursor.c.name],
            set_={"position": statement.excluded.position, "updated_at": statement.excluded.updated_at},
            where=event_cursor.c.position < statement.excluded.position,
        )
        async with self._writing() as conn:
            await conn.execute(statement)


def insert_for(dialect: str) -> Any:
    """The INSERT with ON CONFLICT of the backend (SQLite and PostgreSQL share the syntax),
    for upserts here and in the modules that write through ``TableWrites``."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert
    raise StorageError(f"unsupported database dialect {dialect}")
