"""Which bridges are connected, to any worker: a row per open WebSocket in the bot database.

A worker holds some bridges' sockets in memory; the chat that asks "which PC is online" may
run on another worker, so each open connection is also a row naming the worker that holds it
(``worker_id``) and when it was last known alive (``last_seen``: the bridge's heartbeats and
the holding worker's sweep). A row not refreshed for ``PRESENCE_TTL`` is a worker that died
with the socket open: it is not counted, and the next sweep of any worker deletes it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from bot.bridge.models import BridgePresence
from bot.db import Database

# three missed heartbeats (20 s each) and several sweeps
PRESENCE_TTL = timedelta(seconds=60)


class PresenceStore:
    def __init__(self, db: Database, worker_id: str, clock: Callable[[], datetime]) -> None:
        self._db = db
        self.worker_id = worker_id
        self._clock = clock

    async def seen(
        self,
        *,
        device_id: str,
        account_id: str,
        name: str,
        connection_id: str,
        tokens: Collection[str] | None,
    ) -> None:
        """This worker holds ``connection_id`` of the PC now (inserted, or refreshed)."""
        now = self._clock()
        listed = sorted(tokens) if tokens is not None else None
        for _attempt in range(2):  # two workers may insert the same PC's row at once: retry as update
            try:
                async with self._db.session() as session:
                    row = await session.get(BridgePresence, device_id, with_for_update=True)
                    if row is None:
                        session.add(
                            BridgePresence(
                                device_id=device_id,
                                account_id=account_id,
                                name=name,
                                worker_id=self.worker_id,
                                connection_id=connection_id,
                                tokens=listed,
                                connected_at=now,
                                last_seen=now,
                            )
                        )
                    else:
                        if row.connection_id != connection_id:
                            row.connected_at = now
                        row.account_id, row.name, row.tokens = account_id, name, listed
                        row.worker_id, row.connection_id = self.worker_id, connection_id
                        row.last_seen = now
                return
            except IntegrityError:
                continue

    async def online(self, account_id: str) -> Sequence[BridgePresence]:
        """The account's open connections on any worker, the longest connected first."""
        async with self._db.session() as session:
            rows = await session.scalars(
                select(BridgePresence)
                .where(
                    BridgePresence.account_id == account_id,
                    BridgePresence.last_seen >= self._clock() - PRESENCE_TTL,
                )
                .order_by(BridgePresence.connected_at)
            )
            return list(rows)

    async def closed(self, device_id: str, connection_id: str | None = None) -> None:
        """The connection ended (any connection of the PC when ``connection_id`` is None); a newer
        connection of the same PC, perhaps on another worker, keeps its row."""
        query = delete(BridgePresence).where(BridgePresence.device_id == device_id)
        if connection_id is not None:
            query = query.where(BridgePresence.connection_id == connection_id)
        async with self._db.session() as session:
            await session.execute(query)

    async def expire(self, held_here: Collection[str]) -> None:
        """Forget rows of dead workers, and rows of this worker whose socket it no longer holds."""
        async with self._db.session() as session:
            await session.execute(
                delete(BridgePresence).where(BridgePresence.last_seen < self._clock() - PRESENCE_TTL)
            )
            await session.execute(
                delete(BridgePresence).where(
                    BridgePresence.worker_id == self.worker_id,
                    BridgePresence.device_id.not_in(list(held_here)),
                )
            )

    async def leave(self) -> None:
        """This worker stops: its sockets end with it."""
        async with self._db.session() as session:
            await session.execute(delete(BridgePresence).where(BridgePresence.worker_id == self.worker_id))
