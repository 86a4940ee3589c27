"""Wake something of an engine once the transaction that asked for it commits.

Events and queued mail are rows written in the caller's transaction; whatever delivers them
(the event notifier, the mail dispatcher) must hear of them only after that transaction
commits, and never when it rolls back. A ``CommitSignal`` marks the session and, on commit,
calls ``wake`` with the session's engine.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine, event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction


class CommitSignal:
    def __init__(self, key: str, wake: Callable[[Engine], None]) -> None:
        self._key = key
        self._wake = wake
        event.listen(Session, "after_commit", self._after_commit)
        event.listen(Session, "after_transaction_end", self._after_transaction_end)

    def mark(self, session: Session | AsyncSession) -> None:
        """The caller's transaction has something to announce once it commits."""
        session.info[self._key] = True

    def _after_commit(self, session: Session) -> None:
        if not session.info.pop(self._key, False):
            return
        bind = session.bind
        engine = bind if isinstance(bind, Engine) else getattr(bind, "engine", None)
        if isinstance(engine, Engine):
            self._wake(engine)

    def _after_transaction_end(self, session: Session, transaction: SessionTransaction) -> None:
        # A rolled-back outer transaction took its rows with it: nothing to announce.
        if transaction.parent is None:
            session.info.pop(self._key, None)
