"""Refuses a signed query used again for a different body.

In plain mode the signature covers only token, timestamp and nonce, not the body: anyone who
saw one signed URL could post anything with it inside the timestamp window. Each nonce is kept
with a digest of its body for that window; the same nonce with the same body is WeChat
retrying (answered by the delivery dedupe), with another body it is refused.

On the embedded default (SQLite, one service process) the row is not written on its own: the
check reads, remembers the nonce in memory while the message is handled, and hands back the
insert for the engine to commit with the message (``SideWrite``), so a callback costs one
write transaction. Where several processes share the database (PostgreSQL) the insert comes
first, as one process's memory cannot see another's callbacks.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.channels.wechat.tables import wechat_nonces
from bot.engine.store import SideWrite, TableWrites, insert_for
from bot.errors import RequestRejected


class NonceLedger:
    def __init__(self, db: AsyncEngine, writes: TableWrites, appid: str, window: timedelta) -> None:
        self.db = db  # reads
        self.writes = writes  # writes, batched with the engine's
        self.appid = appid
        self.window = window
        # One process owns an SQLite file in service (see the module's docstring).
        self.deferred = db.dialect.name == "sqlite"
        # (nonce, timestamp) -> body digest, of callbacks whose row is not committed yet
        self._unsettled: dict[tuple[str, str], str] = {}
        self._seen = sa.select(wechat_nonces.c.nonce).where(
            wechat_nonces.c.appid == sa.bindparam("appid"),
            wechat_nonces.c.nonce == sa.bindparam("nonce"),
            wechat_nonces.c.timestamp == sa.bindparam("timestamp"),
        )
        # prepared once: one row per callback, on every message's path
        self._first_seen = (
            insert_for(db.dialect.name)(wechat_nonces)
            .values(
                appid=sa.bindparam("appid"),
                nonce=sa.bindparam("nonce"),
                timestamp=sa.bindparam("timestamp"),
                body_digest=sa.bindparam("body_digest"),
                seen_at=sa.bindparam("seen_at"),
            )
            .on_conflict_do_nothing()
        )

    async def check(self, nonce: str, timestamp: str, body: bytes, now: datetime) -> SideWrite | None:
        """Refuses a nonce used before with another body. A nonce seen for the first time is
        recorded: the returned write goes with the message's handling (then ``settle`` it),
        or None when it is recorded already."""
        if len(nonce) > 64:
            raise RequestRejected("bad nonce", status=403)
        digest = hashlib.sha256(body).hexdigest()
        values = {"appid": self.appid, "nonce": nonce, "timestamp": timestamp, "body_digest": digest}
        if not self.deferred:
            if await self.writes.write(self._first_seen, {**values, "seen_at": now}) == 1:
                return None  # first seen: one write and no read
            self._refuse_other_body(await self._digest(nonce, timestamp), digest)
            return None
        pending = self._unsettled.get((nonce, timestamp))
        if pending is not None:  # its first callback is still being handled
            self._refuse_other_body(pending, digest)
            return None
        lookup = {"appid": self.appid, "nonce": nonce, "timestamp": timestamp}
        if await self.writes.exists(self._seen, lookup):
            self._refuse_other_body(await self._digest(nonce, timestamp), digest)
            return None
        pending = self._unsettled.setdefault((nonce, timestamp), digest)
        if pending is not digest:  # another callback with this nonce got here while we read
            self._refuse_other_body(pending, digest)
            return None
        return SideWrite(self._first_seen, {**values, "seen_at": now})

    def settle(self, write: SideWrite | None) -> None:
        """The handling that carried ``write`` is over (committed or failed): the database
        answers for that nonce from now on."""
        if write is not None:
            self._unsettled.pop((write.params["nonce"], write.params["timestamp"]), None)

    @staticmethod
    def _refuse_other_body(first: str | None, digest: str) -> None:
        # seen before (WeChat retrying, or a replay): the same body or nothing
        if first != digest:
            raise RequestRejected("replayed nonce", status=403)

    async def _digest(self, nonce: str, timestamp: str) -> str | None:
        async with self.db.connect() as conn:
            value = (
                await conn.execute(
                    sa.select(wechat_nonces.c.body_digest).where(
                        wechat_nonces.c.appid == self.appid,
                        wechat_nonces.c.nonce == nonce,
                        wechat_nonces.c.timestamp == timestamp,
                    )
                )
            ).scalar()
        return str(value) if value is not None else None

    async def forget_before(self, cutoff: datetime) -> int:
        return await self.writes.write(
            wechat_nonces.delete().where(
                wechat_nonces.c.appid == self.appid, wechat_nonces.c.seen_at < cutoff
            )
        )
