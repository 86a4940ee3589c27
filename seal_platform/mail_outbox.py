"""The mail outbox: e-mail is queued in the transaction that causes it and sent after it commits.

``queue`` adds a row in the caller's transaction, so a message exists exactly when the change it
reports was committed: a rolled-back invoice issue never e-mails. When that transaction commits,
the ``MailDispatcher`` of its database wakes and delivers in a task of its own (``Database.
follow_up``): the request that caused the mail neither waits for the SMTP server nor holds a
connection while it talks to it.

A message is rendered at delivery (``Renderer`` per ``kind``, given by the composition root),
from the row's payload: what is sent is the state of the moment (an opt-out in between is
honoured) and nothing rendered sits in the database. Delivery claims a row by moving its
``next_attempt_at`` forward (a lease: a process that dies mid-send leaves the row due again),
counts the attempt, sends with no session held, then records sent, retry later (growing delay,
also re-woken in-process) or given up after ``MAX_ATTEMPTS``. Every wake also sends whatever
else is due, so leftovers of a restart or an SMTP outage go out with the next mail, and the
standalone platform sweeps on a timer (``sweep_forever``).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import aiosmtplib
from sqlalchemy import JSON, Engine, Integer, String, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from dbkit.types import UtcDateTime
from seal_platform.commit_signal import CommitSignal
from seal_platform.db import Base, Database

if TYPE_CHECKING:
    from seal_platform.services import PlatformServices
    from seal_platform.settings import PlatformSettings

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
# A claimed row is due again after this if its sender never reported back (it died).
LEASE = timedelta(minutes=10)
BATCH = 20


def mail_enabled(settings: PlatformSettings) -> bool:
    """Whether the operator set up SMTP; without it nothing is queued and nothing offers e-mail."""
    return bool(settings.smtp_host and settings.smtp_from)


class MailStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    DROPPED = "dropped"  # nothing to send any more (mail switched off, notice opted out)
    FAILED = "failed"  # refused MAX_ATTEMPTS times


class MailOutboxRow(Base):
    __tablename__ = "mail_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    account_id: Mapped[str | None] = mapped_column(String(36), index=True, default=None)
    # Empty when the renderer finds the address itself (a notice goes to the current opt-in).
    recipient: Mapped[str] = mapped_column(String(200), default="")
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default=MailStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    last_error: Mapped[str | None] = mapped_column(String(200), default=None)


@dataclass(frozen=True)
class QueuedMail:
    """A claimed row, detached from its session."""

    id: int
    kind: str
    account_id: str | None
    recipient: str
    payload: dict[str, Any]
    attempts: int


# Builds the message of one row, or ``None`` when there is nothing to send any more. Runs with no
# session held; it opens its own short ones to read what it needs.
Renderer = Callable[["PlatformServices", QueuedMail], Awaitable[EmailMessage | None]]
Sender = Callable[[EmailMessage], Awaitable[None]]


def queue(
    session: AsyncSession,
    *,
    kind: str,
    payload: dict[str, Any],
    now: datetime,
    account_id: str | None = None,
    recipient: str = "",
) -> MailOutboxRow:
    """Record a message in the caller's transaction; it is sent once that transaction commits."""
    row = MailOutboxRow(
        kind=kind,
        account_id=account_id,
        recipient=recipient,
        payload=payload,
        status=MailStatus.PENDING.value,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(row)
    _committed.mark(session)
    return row


def retry_delay(attempts: int) -> timedelta:
    """1, 2, 4, ... minutes, at most an hour."""
    return timedelta(minutes=min(60, 2 ** max(0, attempts - 1)))


class MailDispatcher:
    """Delivers the outbox of one platform database (one per process, see ``install``)."""

    def __init__(self, services: PlatformServices, renderers: Mapping[str, Renderer], send: Sender) -> None:
        self.services = services
        self.renderers = dict(renderers)
        self.send = send
        self._running = False
        self._again = False

    def wake(self) -> None:
        """Called in the commit path: only starts (or re-arms) the delivery task."""
        if self._running:
            self._again = True
            return
        try:
            self.services.db.follow_up(self._run())
        except RuntimeError:  # no running event loop (a synchronous caller): the sweep sends it
            return
        self._running = True

    async def _run(self) -> None:
        try:
            while True:
                self._again = False
                try:
                    await self.deliver_due()
                except Exception:
                    # The rows stay due; the next wake or sweep sends them.
                    log.exception("mail outbox delivery failed")
                if not self._again:
                    return
        finally:
            self._running = False

    async def deliver_due(self) -> int:
        """Send every due row (in batches); returns how many went out."""
        sent = 0
        while True:
            claimed = await self._claim()
            for mail in claimed:
                sent += await self._deliver(mail)
            if len(claimed) < BATCH:
                return sent

    async def _claim(self) -> list[QueuedMail]:
        db, now = self.services.db, self.services.clock.now()
        claimed: list[QueuedMail] = []
        async with db.session() as session:
            rows = list(
                await session.scalars(
                    select(MailOutboxRow)
                    .where(
                        MailOutboxRow.status == MailStatus.PENDING.value, MailOutboxRow.next_attempt_at <= now
                    )
                    .order_by(MailOutboxRow.id)
                    .limit(BATCH)
                )
            )
            for row in rows:
                # Conditional on the lease we read: of two senders exactly one claims the row.
                won = await session.execute(
                    update(MailOutboxRow)
                    .where(
                        MailOutboxRow.id == row.id,
                        MailOutboxRow.status == MailStatus.PENDING.value,
                        MailOutboxRow.next_attempt_at == row.next_attempt_at,
                    )
                    .values(next_attempt_at=now + LEASE, attempts=MailOutboxRow.attempts + 1)
                    .returning(MailOutboxRow.attempts)
                    .execution_options(synchronize_session=False)
                )
                attempts = won.scalar_one_or_none()
                if attempts is not None:
                    claimed.append(
                        QueuedMail(
                            row.id, row.kind, row.account_id, row.recipient, dict(row.payload), attempts
                        )
                    )
        return claimed

    async def _deliver(self, mail: QueuedMail) -> int:
        renderer = self.renderers.get(mail.kind)
        if renderer is None:
            await self._finish(mail, MailStatus.DROPPED, f"no renderer for {mail.kind}")
            return 0
        message = await renderer(self.services, mail)
        if message is None:
            await self._finish(mail, MailStatus.DROPPED, None)
            return 0
        try:
            await self.send(message)
        except (aiosmtplib.SMTPException, OSError) as exc:
            # Never the address or the text: the class of failure is what the operator acts on.
            log.warning(
                "mail %s (%s) not accepted, attempt %s: %s",
                mail.id,
                mail.kind,
                mail.attempts,
                type(exc).__name__,
            )
            await self._retry_or_give_up(mail, type(exc).__name__)
            return 0
        await self._finish(mail, MailStatus.SENT, None)
        return 1

    async def _finish(self, mail: QueuedMail, status: MailStatus, error: str | None) -> None:
        now = self.services.clock.now()
        async with self.services.db.session() as session:
            await session.execute(
                update(MailOutboxRow)
                .where(MailOutboxRow.id == mail.id)
                .values(
                    status=status.value, sent_at=now if status is MailStatus.SENT else None, last_error=error
                )
            )

    async def _retry_or_give_up(self, mail: QueuedMail, error: str) -> None:
        if mail.attempts >= MAX_ATTEMPTS:
            log.error("mail %s (%s) given up after %s attempts", mail.id, mail.kind, mail.attempts)
            await self._finish(mail, MailStatus.FAILED, error)
            return
        delay = retry_delay(mail.attempts)
        async with self.services.db.session() as session:
            await session.execute(
                update(MailOutboxRow)
                .where(MailOutboxRow.id == mail.id)
                .values(next_attempt_at=self.services.clock.now() + delay, last_error=error)
            )
        asyncio.get_running_loop().call_later(delay.total_seconds(), self.wake)

    async def sweep_forever(self, every_seconds: float = 60.0) -> None:
        """The standalone platform's timer: whatever is due goes out even with no new commit."""
        while True:
            await asyncio.sleep(every_seconds)
            self.wake()


_dispatchers: weakref.WeakKeyDictionary[Engine, MailDispatcher] = weakref.WeakKeyDictionary()


def install(dispatcher: MailDispatcher) -> MailDispatcher:
    """Make ``dispatcher`` the one woken by commits on its services' database."""
    _dispatchers[dispatcher.services.db.engine.sync_engine] = dispatcher
    return dispatcher


def dispatcher_for(db: Database) -> MailDispatcher | None:
    return _dispatchers.get(db.engine.sync_engine)


def _wake_dispatcher(engine: Engine) -> None:
    dispatcher = _dispatchers.get(engine)
    if dispatcher is not None:
        dispatcher.wake()


_committed = CommitSignal("platform_mail_pending", _wake_dispatcher)
