"""The platform's outbox of events for the bot, and the in-process wake-up after commit.

``publish`` adds an event row in the caller's transaction, so an event exists exactly when the
change it reports was committed. The bot reads the rows through ``GET /v1/events?after=<id>``;
in the embedded default it also subscribes to the ``EventNotifier`` so that it fetches right
after a commit instead of waiting for its next poll.

Ordering caveat: ids come from the database sequence. On SQLite writers are serialised, so commit
order equals id order. On PostgreSQL two concurrent transactions may commit out of id order; a
consumer that advanced its cursor past a late-committing lower id would miss it, so the feed
holds back the newest rows for a short settle time there (see ``api_events``).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Engine, Integer, String
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from dbkit.types import UtcDateTime
from seal_platform.commit_signal import CommitSignal
from seal_platform.db import Base, Database, utcnow

log = logging.getLogger(__name__)


class PlatformEvent(Base):
    __tablename__ = "platform_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str | None] = mapped_column(String(36), index=True)
    type: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


Listener = Callable[[], None]


class EventNotifier:
    """Wakes in-process consumers after a commit that published events.

    Listeners are called synchronously inside the commit path, so they must only flag work
    (``asyncio.Event.set``), never do it.
    """

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def notify(self) -> None:
        for listener in list(self._listeners):
            try:
                listener()
            except Exception:
                # A broken listener must not fail the commit that already happened.
                log.exception("event listener failed")


_notifiers: weakref.WeakKeyDictionary[Engine, EventNotifier] = weakref.WeakKeyDictionary()


def notifier_for(db: Database) -> EventNotifier:
    """The notifier of one database: publishing code only knows its session, hence keyed by engine."""
    engine = db.engine.sync_engine
    notifier = _notifiers.get(engine)
    if notifier is None:
        notifier = _notifiers[engine] = EventNotifier()
    return notifier


def publish(session: AsyncSession, account_id: str | None, type: str, data: dict[str, Any]) -> PlatformEvent:
    """Record an event in the caller's transaction; listeners wake when that transaction commits."""
    platform_event = PlatformEvent(account_id=account_id, type=type, data=data, created_at=utcnow())
    session.add(platform_event)
    _committed.mark(session)
    return platform_event


def _notify(engine: Engine) -> None:
    notifier = _notifiers.get(engine)
    if notifier is not None:
        notifier.notify()


_committed = CommitSignal("platform_events_pending", _notify)
