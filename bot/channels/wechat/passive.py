"""The 5-second rule: answer inside the webhook when the engine is quick, otherwise "success"
and let the outbox deliver through the customer-service API; never both.

The engine holds WeChat replies back from the dispatcher for ``passive_hold``; the webhook
waits at most ``passive_budget`` (shorter) and then claims the leading text replies with
``claim_passive``, which only returns what the dispatcher has not taken. What one delivery id
was answered with is recorded, so WeChat's retries (and identical deliveries racing each other)
get the same answer: the first request to reserve the id decides, the others wait for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.channels.wechat.render import passive_text
from bot.channels.wechat.tables import wechat_deliveries
from bot.engine.messages import OutboundMessage, Reply
from bot.engine.store import ConversationStore

SUCCESS = "success"


class PassiveAnswers:
    def __init__(self, db: AsyncEngine, store: ConversationStore, appid: str, *, poll: float = 0.05) -> None:
        self.db = db
        self.store = store
        self.appid = appid
        self.poll = poll

    def _where(self, delivery_id: str) -> sa.ColumnElement[bool]:
        return sa.and_(
            wechat_deliveries.c.appid == self.appid, wechat_deliveries.c.delivery_id == delivery_id
        )

    async def _reserve(self, delivery_id: str, now: datetime) -> bool:
        try:
            async with self.db.begin() as conn:
                await conn.execute(
                    wechat_deliveries.insert().values(
                        appid=self.appid, delivery_id=delivery_id, body=None, created_at=now
                    )
                )
        except sa.exc.IntegrityError:
            return False
        return True

    async def recorded(self, delivery_id: str) -> str | None:
        async with self.db.connect() as conn:
            body = (
                await conn.execute(sa.select(wechat_deliveries.c.body).where(self._where(delivery_id)))
            ).scalar()
        return str(body) if body is not None else None

    async def _record(self, delivery_id: str, body: str) -> None:
        async with self.db.begin() as conn:
            await conn.execute(wechat_deliveries.update().where(self._where(delivery_id)).values(body=body))

    async def answer(
        self,
        delivery_id: str,
        messages: Sequence[OutboundMessage],
        *,
        render: Callable[[list[Reply]], tuple[int, str]] = passive_text,
        now: datetime,
        deadline: float,
    ) -> str | None:
        """The passive reply text for this delivery (None: answer "success")."""
        if await self._reserve(delivery_id, now):
            text = await self._claim(messages, render)
            await self._record(delivery_id, text if text is not None else SUCCESS)
            return text
        loop = asyncio.get_running_loop()
        while True:
            body = await self.recorded(delivery_id)
            if body is not None:
                return None if body == SUCCESS else body
            if loop.time() >= deadline:
                return None
            await asyncio.sleep(self.poll)

    async def _claim(
        self, messages: Sequence[OutboundMessage], render: Callable[[list[Reply]], tuple[int, str]]
    ) -> str | None:
        fits, _ = render([m.reply for m in messages])
        claimed: list[OutboundMessage] = []
        # one at a time and in order: a reply the dispatcher already took ends the run, so
        # nothing later can overtake it in the chat
        for message in messages[:fits]:
            taken = await self.store.claim_passive([message.outbox_id])
            if not taken:
                break
            claimed.extend(taken)
        if not claimed:
            return None
        _, text = render([m.reply for m in claimed])
        return text

    async def forget_before(self, cutoff: datetime) -> int:
        async with self.db.begin() as conn:
            result = await conn.execute(
                wechat_deliveries.delete().where(
                    wechat_deliveries.c.appid == self.appid, wechat_deliveries.c.created_at < cutoff
                )
            )
            return int(result.rowcount)
