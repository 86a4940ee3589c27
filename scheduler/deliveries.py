"""The record of every expiry reminder: one row per (seal, threshold, valid_to), claimed once.

The UNIQUE constraint is what makes a reminder exactly-once across scheduler processes: every
worker may plan the same reminder, but only one INSERT creates its row, and only the worker whose
conditional UPDATE takes the row's lease sends it. APScheduler only says *when* to look; this
table decides *what* is sent.

Statuses (``last_error`` holds the reason of every status but ``sent``):

- ``planned``: due and waiting to be sent (also between retries of a transient failure, and
  while staff own the conversation: a takeover re-plans, it never fails a reminder);
- ``deferred``: could not go now for a reason that passes (quiet hours, a channel's daily
  quota); ``next_attempt_at`` says until when;
- ``queued``: handed to the outbox (``outbox_id``); the outbox's outcome is copied back later.
  A message the channel only parked until the user writes again is *not* sent: the reminder
  goes back to ``planned`` and the next channel of the policy is tried;
- final: ``sent`` (``channel`` and the provider's ``provider_message_id``), ``undeliverable``
  (no channel of the policy reached the user; staff see it in ``/support/reminders`` and can
  open a follow-up task), ``opted_out``, ``superseded`` (the seal was renewed or cancelled, or
  a more urgent reminder fell due first).

``tried`` lists the channels that refused this reminder for good, so a retry goes on with the
next one instead of asking the same channel again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.db import Base
from bot.engine.tables import outbox


class Status:
    PLANNED = "planned"
    DEFERRED = "deferred"
    QUEUED = "queued"
    SENT = "sent"
    UNDELIVERABLE = "undeliverable"
    OPTED_OUT = "opted_out"
    SUPERSEDED = "superseded"

    PENDING = (PLANNED, DEFERRED)
    OPEN = (PLANNED, DEFERRED, QUEUED)
    FINAL = (SENT, UNDELIVERABLE, OPTED_OUT, SUPERSEDED)


class Followup:
    """The staff task on an undeliverable reminder: call or text the customer."""

    OPEN = "open"
    DONE = "done"


reminder_deliveries = sa.Table(
    "reminder_deliveries",
    Base.metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("seal_id", sa.String(36), nullable=False),
    # Days before expiry; -1 for the reminder the day after expiry.
    sa.Column("threshold", sa.Integer, nullable=False),
    sa.Column("valid_to", sa.DateTime(timezone=True), nullable=False),
    sa.Column("account_id", sa.String(36), nullable=False, index=True),
    sa.Column("seal_kind", sa.String(16), nullable=False),
    sa.Column("seal_name", sa.String(200), nullable=False),
    sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
    # The chat identity it went to ("channel:account:user"), and how.
    sa.Column("channel_key", sa.String(300), nullable=True),
    sa.Column("route", sa.String(16), nullable=True),  # "outbox" | "notice" | "sms" | "email"
    sa.Column("outbox_id", sa.Integer, nullable=True),
    # Where it went when sent: the channel ("telegram", "wechat", "sms", "email", ...) and the
    # provider's id of the message (WeChat msgid, the SMS reference, the e-mail Message-ID;
    # ``outbox:<id>`` for a chat message, whose channel answers with no id we keep).
    sa.Column("channel", sa.String(16), nullable=True),
    sa.Column("provider_message_id", sa.String(200), nullable=True),
    # Channels that refused this reminder for good, comma-separated, in the order tried.
    sa.Column("tried", sa.String(200), nullable=True),
    # The staff follow-up of an undeliverable reminder (``Followup``), who opened it and when.
    sa.Column("followup", sa.String(8), nullable=True),
    sa.Column("followup_by", sa.String(64), nullable=True),
    sa.Column("followup_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
    sa.UniqueConstraint("seal_id", "threshold", "valid_to", name="uq_reminder_deliveries_claim"),
    # The work queue: open rows by the time they are next due.
    sa.Index("ix_reminder_deliveries_due", "status", "next_attempt_at"),
)

T = reminder_deliveries


def aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Claim:
    seal_id: str
    threshold: int
    valid_to: datetime
    account_id: str
    seal_kind: str
    seal_name: str
    due_at: datetime


@dataclass(frozen=True)
class Delivery:
    id: int
    seal_id: str
    threshold: int
    valid_to: datetime
    account_id: str
    seal_kind: str
    seal_name: str
    due_at: datetime
    status: str
    attempts: int
    next_attempt_at: datetime
    channel_key: str | None
    route: str | None
    outbox_id: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None
    channel: str | None = None
    provider_message_id: str | None = None
    tried: tuple[str, ...] = ()
    followup: str | None = None
    followup_by: str | None = None
    followup_at: datetime | None = None

    @property
    def reason(self) -> str | None:
        return None if self.status == Status.SENT else self.last_error

    @property
    def dedupe_id(self) -> str:
        """The engine's dedupe id of this reminder's push: one message per conversation. A push
        that did not reach the user (held by a takeover) is followed by a new one, whose id
        names the message it follows."""
        base = f"reminder:{self.seal_id}:{self.threshold}:{self.valid_to.isoformat()}"
        return base if self.outbox_id is None else f"{base}:after:{self.outbox_id}"

    @classmethod
    def from_row(cls, row: Any) -> Delivery:
        return cls(
            id=row.id,
            seal_id=row.seal_id,
            threshold=row.threshold,
            valid_to=aware(row.valid_to),
            account_id=row.account_id,
            seal_kind=row.seal_kind,
            seal_name=row.seal_name,
            due_at=aware(row.due_at),
            status=row.status,
            attempts=row.attempts,
            next_attempt_at=aware(row.next_attempt_at),
            channel_key=row.channel_key,
            route=row.route,
            outbox_id=row.outbox_id,
            last_error=row.last_error,
            created_at=aware(row.created_at),
            updated_at=aware(row.updated_at),
            sent_at=aware(row.sent_at) if row.sent_at is not None else None,
            channel=row.channel,
            provider_message_id=row.provider_message_id,
            tried=tuple(t for t in (row.tried or "").split(",") if t),
            followup=row.followup,
            followup_by=row.followup_by,
            followup_at=aware(row.followup_at) if row.followup_at is not None else None,
        )


def _insert_ignoring_duplicates(conn: AsyncConnection) -> Any:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(T).on_conflict_do_nothing(constraint="uq_reminder_deliveries_claim")
    if conn.dialect.name == "sqlite":
        return sqlite.insert(T).on_conflict_do_nothing()
    raise NotImplementedError(f"no INSERT ... ON CONFLICT for {conn.dialect.name}")


class DeliveryStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def claim(self, claims: Sequence[Claim], now: datetime) -> list[Claim]:
        """Create the rows of reminders that fell due; returns the claims that are new (a row
        another worker or an earlier pass created is left as it is). Each new claim makes the
        pending reminders of other thresholds or cycles of the same seal pointless."""
        if not claims:
            return []
        async with self.engine.begin() as conn:
            existing = await self._existing(conn, [c.seal_id for c in claims])
            fresh = [c for c in claims if (c.seal_id, c.threshold, c.valid_to) not in existing]
            if not fresh:
                return []
            await conn.execute(
                _insert_ignoring_duplicates(conn),
                [
                    {
                        "seal_id": c.seal_id,
                        "threshold": c.threshold,
                        "valid_to": c.valid_to,
                        "account_id": c.account_id,
                        "seal_kind": c.seal_kind,
                        "seal_name": c.seal_name,
                        "due_at": c.due_at,
                        "status": Status.PLANNED,
                        "attempts": 0,
                        "next_attempt_at": now,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for c in fresh
                ],
            )
            for claim in fresh:
                await conn.execute(
                    T.update()
                    .where(
                        T.c.seal_id == claim.seal_id,
                        T.c.status.in_(Status.PENDING),
                        sa.or_(T.c.threshold != claim.threshold, T.c.valid_to != claim.valid_to),
                    )
                    .values(
                        status=Status.SUPERSEDED,
                        last_error="a more urgent reminder fell due",
                        lease_until=None,
                        updated_at=now,
                    )
                )
        return fresh

    @staticmethod
    async def _existing(conn: AsyncConnection, seal_ids_: Sequence[str]) -> set[tuple[str, int, datetime]]:
        seal_ids = sorted(set(seal_ids_))
        found: set[tuple[str, int, datetime]] = set()
        for start in range(0, len(seal_ids), 500):
            rows = await conn.execute(
                sa.select(T.c.seal_id, T.c.threshold, T.c.valid_to).where(
                    T.c.seal_id.in_(seal_ids[start : start + 500])
                )
            )
            found.update((r.seal_id, r.threshold, aware(r.valid_to)) for r in rows)
        return found

    async def lease_due(self, now: datetime, *, limit: int, lease_until: datetime) -> list[Delivery]:
        """Take the lease of pending reminders that are due; a row leased by another worker
        (whose lease has not run out) is not taken, so only one worker sends it."""
        async with self.engine.begin() as conn:
            candidates = (
                await conn.execute(
                    sa.select(T.c.id, T.c.status)
                    .where(
                        T.c.status.in_(Status.PENDING),
                        T.c.next_attempt_at <= now,
                        sa.or_(T.c.lease_until.is_(None), T.c.lease_until <= now),
                    )
                    .order_by(T.c.next_attempt_at, T.c.id)
                    .limit(limit)
                )
            ).all()
            taken: list[int] = []
            for row in candidates:
                result = await conn.execute(
                    T.update()
                    .where(
                        T.c.id == row.id,
                        T.c.status == row.status,
                        sa.or_(T.c.lease_until.is_(None), T.c.lease_until <= now),
                    )
                    .values(lease_until=lease_until, updated_at=now)
                )
                if result.rowcount == 1:
                    taken.append(row.id)
            if not taken:
                return []
            rows = (await conn.execute(sa.select(T).where(T.c.id.in_(taken)).order_by(T.c.id))).all()
        return [Delivery.from_row(r) for r in rows]

    async def finish(
        self,
        delivery_id: int,
        status: str,
        now: datetime,
        *,
        failed_attempt: bool = False,
        error: str | None = None,
        channel_key: str | None = None,
        route: str | None = None,
        outbox_id: int | None = None,
        channel: str | None = None,
        provider_message_id: str | None = None,
        tried: Sequence[str] | None = None,
    ) -> None:
        values: dict[str, Any] = {
            "status": status,
            "lease_until": None,
            "updated_at": now,
            "last_error": error,
        }
        if failed_attempt:
            values["attempts"] = T.c.attempts + 1
        if status == Status.SENT:
            values["sent_at"] = now
        if channel_key is not None:
            values["channel_key"] = channel_key
        if route is not None:
            values["route"] = route
        if outbox_id is not None:
            values["outbox_id"] = outbox_id
        if channel is not None:
            values["channel"] = channel
        if provider_message_id is not None:
            values["provider_message_id"] = provider_message_id
        if tried is not None:
            values["tried"] = ",".join(tried) or None
        async with self.engine.begin() as conn:
            await conn.execute(T.update().where(T.c.id == delivery_id).values(**values))

    async def postpone(
        self,
        delivery_id: int,
        status: str,
        until: datetime,
        now: datetime,
        *,
        error: str | None = None,
        failed_attempt: bool = False,
        tried: Sequence[str] | None = None,
    ) -> None:
        """Back to the queue until ``until`` (quiet hours, staff owning the chat, a retry);
        ``failed_attempt`` counts a send that failed (quiet hours and waiting do not)."""
        values: dict[str, Any] = {
            "status": status,
            "next_attempt_at": until,
            "lease_until": None,
            "updated_at": now,
            "last_error": error,
            "attempts": T.c.attempts + 1 if failed_attempt else T.c.attempts,
        }
        if tried is not None:
            values["tried"] = ",".join(tried) or None
        async with self.engine.begin() as conn:
            await conn.execute(T.update().where(T.c.id == delivery_id).values(**values))

    async def open_followup(self, delivery_id: int, staff: str, now: datetime) -> bool:
        """Open the "call/SMS this customer" task of an undeliverable reminder (once)."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                T.update()
                .where(T.c.id == delivery_id, T.c.status == Status.UNDELIVERABLE, T.c.followup.is_(None))
                .values(followup=Followup.OPEN, followup_by=staff, followup_at=now, updated_at=now)
            )
        return bool(result.rowcount == 1)

    async def close_followup(self, delivery_id: int, staff: str, now: datetime) -> bool:
        """The customer was called or texted: the task is done."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                T.update()
                .where(T.c.id == delivery_id, T.c.followup == Followup.OPEN)
                .values(followup=Followup.DONE, followup_by=staff, followup_at=now, updated_at=now)
            )
        return bool(result.rowcount == 1)

    async def get(self, delivery_id: int) -> Delivery | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(T).where(T.c.id == delivery_id))).first()
        return Delivery.from_row(row) if row is not None else None

    async def queued_outcomes(self, limit: int = 500) -> list[tuple[Delivery, str, str | None]]:
        """Reminders in the outbox whose message reached a final state: (reminder, outbox
        status, outbox error)."""
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(
                        T, outbox.c.status.label("outbox_status"), outbox.c.last_error.label("outbox_error")
                    )
                    .join(outbox, outbox.c.id == T.c.outbox_id)
                    .where(
                        T.c.status == Status.QUEUED,
                        outbox.c.status.in_(["sent", "passive", "failed", "held", "parked"]),
                    )
                    .order_by(T.c.id)
                    .limit(limit)
                )
            ).all()
        return [(Delivery.from_row(r), r.outbox_status, r.outbox_error) for r in rows]

    async def recent(self, *, statuses: Sequence[str] | None = None, limit: int = 200) -> list[Delivery]:
        query = sa.select(T).order_by(T.c.updated_at.desc(), T.c.id.desc()).limit(limit)
        if statuses:
            query = query.where(T.c.status.in_(list(statuses)))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [Delivery.from_row(r) for r in rows]

    async def claimed_keys(self, seal_ids: Sequence[str]) -> set[tuple[str, int, datetime]]:
        """Which (seal, threshold, valid_to) already have a row, whatever became of it."""
        async with self.engine.connect() as conn:
            return await self._existing(conn, seal_ids)

    async def counts(self) -> dict[str, int]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sa.select(T.c.status, sa.func.count()).group_by(T.c.status))).all()
        return {str(status): int(n) for status, n in rows}
