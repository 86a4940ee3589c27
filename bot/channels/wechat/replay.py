"""Refuses a signed query used again for a different body.

In plain mode the signature covers only token, timestamp and nonce, not the body: anyone who
saw one signed URL could post anything with it inside the timestamp window. Each nonce is kept
with a digest of its body for that window; the same nonce with the same body is WeChat
retrying (answered by the delivery dedupe), with another body it is refused.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.channels.wechat.tables import wechat_nonces
from bot.engine.store import TableWrites, insert_for
from bot.errors import RequestRejected


class NonceLedger:
    def __init__(self, db: AsyncEngine, writes: TableWrites, appid: str, window: timedelta) -> None:
        self.db = db  # reads
        self.writes = writes  # writes, batched with the engine's
        self.appid = appid
        self.window = window
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

    async def check(self, nonce: str, timestamp: str, body: bytes, now: datetime) -> None:
        if len(nonce) > 64:
            raise RequestRejected("bad nonce", status=403)
        digest = hashlib.sha256(body).hexdigest()
        values = {"appid": self.appid, "nonce": nonce, "timestamp": timestamp, "body_digest": digest}
        if await self.writes.write(self._first_seen, {**values, "seen_at": now}) == 1:
            return  # first seen: the usual case costs one write and no read
        # seen before (WeChat retrying, or a replay): compare with the first body
        if await self._digest(nonce, timestamp) != digest:
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
