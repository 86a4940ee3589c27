"""The customer-service (客服) allowance: after a user message, 5 messages within 48 hours;
after a menu click, follow or QR scan, 3 within a minute. A new interaction replaces the
allowance with a fresh one (WeChat does not add them up)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.channels.wechat.tables import wechat_cs_backlog, wechat_cs_quota
from bot.engine.messages import Reply
from bot.engine.store import SideWrite, TableWrites, insert_for


class _OwnWrites:
    """Writes in a transaction of their own, for users of the quota without the bot's store."""

    def __init__(self, db: AsyncEngine) -> None:
        self.db = db

    async def write(
        self, statement: sa.Insert | sa.Update | sa.Delete, params: Mapping[str, Any] | None = None
    ) -> int:
        async with self.db.begin() as conn:
            return int((await conn.execute(statement, dict(params) if params else None)).rowcount)

    async def exists(self, statement: sa.Select[Any], params: Mapping[str, Any]) -> bool:
        async with self.db.connect() as conn:
            return (await conn.execute(statement.limit(1), dict(params))).first() is not None

    async def close(self) -> None:
        """The engine is the caller's."""


def _aware(value: datetime, like: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=like.tzinfo)


@dataclass(frozen=True)
class Allowance:
    allowance: int
    used: int
    expires_at: datetime

    def left(self, now: datetime) -> int:
        return 0 if now >= self.expires_at else max(0, self.allowance - self.used)


class CustomerServiceQuota:
    def __init__(self, db: AsyncEngine, appid: str, writes: TableWrites | None = None) -> None:
        self.db = db
        self.appid = appid
        # opening an allowance is on every message's path: batched with the engine's writes
        # when the bot's store is given (the support desk reads the quota without it)
        self.writes: TableWrites = writes or _OwnWrites(db)
        self._opening = self._prepare_open()
        self._waiting = sa.select(wechat_cs_backlog.c.id).where(
            wechat_cs_backlog.c.appid == sa.bindparam("appid"),
            wechat_cs_backlog.c.openid == sa.bindparam("openid"),
        )

    def _where(self, openid: str) -> sa.ColumnElement[bool]:
        return sa.and_(wechat_cs_quota.c.appid == self.appid, wechat_cs_quota.c.openid == openid)

    async def open(self, openid: str, *, allowance: int, lasts: timedelta, now: datetime) -> None:
        """One upsert: a new allowance replaces the old one, except that a click after a
        message must not shrink a larger, longer allowance."""
        opening = self.opening(openid, allowance=allowance, lasts=lasts, now=now)
        await self.writes.write(opening.statement, opening.params)

    def opening(self, openid: str, *, allowance: int, lasts: timedelta, now: datetime) -> SideWrite:
        """The upsert of ``open``, for the engine to commit with the message that opened it."""
        params = {
            "appid": self.appid,
            "openid": openid,
            "allowance": allowance,
            "opened_at": now,
            "expires_at": now + lasts,
        }
        return SideWrite(self._opening, params)

    def _prepare_open(self) -> sa.Insert:
        """The upsert of ``open``, prepared once: it runs for every message and click."""
        table = wechat_cs_quota
        insert = insert_for(self.db.dialect.name)(table).values(
            appid=sa.bindparam("appid"),
            openid=sa.bindparam("openid"),
            allowance=sa.bindparam("allowance"),
            used=0,
            opened_at=sa.bindparam("opened_at"),
            expires_at=sa.bindparam("expires_at"),
        )
        new = insert.excluded
        keep_old = sa.and_(
            table.c.expires_at > new.expires_at, table.c.allowance - table.c.used > new.allowance
        )
        upsert: sa.Insert = insert.on_conflict_do_update(
            index_elements=[table.c.appid, table.c.openid],
            set_={
                "allowance": new.allowance,
                "used": 0,
                "opened_at": new.opened_at,
                "expires_at": new.expires_at,
            },
            where=sa.not_(keep_old),
        )
        return upsert

    async def get(self, openid: str, now: datetime) -> Allowance | None:
        async with self.db.connect() as conn:
            row = (await conn.execute(sa.select(wechat_cs_quota).where(self._where(openid)))).first()
        if row is None:
            return None
        return Allowance(row.allowance, row.used, _aware(row.expires_at, now))

    async def take(self, openid: str, now: datetime) -> int | None:
        """Count one message; returns how many are left after it, or None if none was left."""
        async with self.db.begin() as conn:
            result = await conn.execute(
                wechat_cs_quota.update()
                .where(
                    self._where(openid),
                    wechat_cs_quota.c.expires_at > now,
                    wechat_cs_quota.c.used < wechat_cs_quota.c.allowance,
                )
                .values(used=wechat_cs_quota.c.used + 1)
            )
            if result.rowcount != 1:
                return None
            row = (await conn.execute(sa.select(wechat_cs_quota).where(self._where(openid)))).one()
            return int(row.allowance - row.used)

    async def give_back(self, openid: str) -> None:
        """A send that failed for another reason did not use the allowance."""
        async with self.db.begin() as conn:
            await conn.execute(
                wechat_cs_quota.update()
                .where(self._where(openid), wechat_cs_quota.c.used > 0)
                .values(used=wechat_cs_quota.c.used - 1)
            )

    async def exhaust(self, openid: str, *, closed: bool, now: datetime) -> None:
        """WeChat said 45047 (count used up) or 45015 (window closed): believe it."""
        values: dict[str, Any] = {"used": wechat_cs_quota.c.allowance}
        if closed:
            values["expires_at"] = now
        async with self.db.begin() as conn:
            await conn.execute(wechat_cs_quota.update().where(self._where(openid)).values(**values))

    # ---- the backlog ------------------------------------------------------------------------

    async def defer(self, openid: str, reply: Reply, now: datetime) -> None:
        async with self.db.begin() as conn:
            await conn.execute(
                wechat_cs_backlog.insert().values(
                    appid=self.appid, openid=openid, reply=reply.to_dict(), created_at=now
                )
            )

    async def has_backlog(self, openid: str) -> bool:
        """Whether messages wait for this user (checked after every message: usually none)."""
        return await self.writes.exists(self._waiting, {"appid": self.appid, "openid": openid})

    async def backlog(self, openid: str) -> list[tuple[int, Reply]]:
        async with self.db.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(wechat_cs_backlog.c.id, wechat_cs_backlog.c.reply)
                    .where(wechat_cs_backlog.c.appid == self.appid, wechat_cs_backlog.c.openid == openid)
                    .order_by(wechat_cs_backlog.c.id)
                )
            ).all()
        return [(row.id, Reply.from_dict(row.reply)) for row in rows]

    async def drop(self, backlog_id: int) -> bool:
        async with self.db.begin() as conn:
            result = await conn.execute(
                wechat_cs_backlog.delete().where(wechat_cs_backlog.c.id == backlog_id)
            )
        return bool(result.rowcount == 1)
