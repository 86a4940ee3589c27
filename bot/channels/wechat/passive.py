"""The 5-second rule: answer inside the webhook when the engine is quick, otherwise "success"
and let the outbox deliver through the customer-service API; never both.

A message handled in time is answered by ``offer``: the engine's commit of the message puts the
leading text replies in the response and records the answer, in its one transaction, if the
callback's ``AnswerWindow`` is still open then (``bot.engine.in_band``). What follows is the
path of a delivery that commits nothing (WeChat retrying one already handled), and of replies
released to the customer-service API.

The engine holds WeChat replies back from the dispatcher for ``passive_hold``; the webhook
waits until its deadline (``passive_budget`` after the request arrived) and claims the leading
text replies with ``claim_passive``, which only returns what the dispatcher has not taken, and
nothing after the deadline. Replies the answer does not carry are released at once. What one delivery id
was answered with is recorded, so WeChat's retries (and identical deliveries racing each other)
get the same answer: the first request to reserve the id decides, the others wait for it.

A private reply (a summary to check) is answered with its full text, opened from the outbox's
sealed copy just as the dispatcher does for the customer-service API; the answer recorded for
retries is kept sealed, so the full text is never stored in clear.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.channels.wechat.render import passive_text
from bot.channels.wechat.tables import wechat_deliveries
from bot.engine.in_band import AnswerWindow, InBandPlan
from bot.engine.messages import OutboundMessage, Reply, opened
from bot.engine.ports import Clock
from bot.engine.secrets_box import SecretBox, is_sealed
from bot.engine.store import Outbox, SideWrite, TableWrites, insert_for

SUCCESS = "success"


class PassiveStore(Outbox, TableWrites, Protocol):
    """Claims and releases in the outbox; the delivery record written beside them."""


Render = Callable[[list[Reply]], tuple[int, str]]


class PassiveOffer:
    """One callback's offer to carry replies in its response (``InBandAnswer``): what fits,
    and the delivery record the commit writes when it carries them."""

    def __init__(
        self,
        answers: PassiveAnswers,
        delivery_id: str,
        window: AnswerWindow,
        render: Callable[[str], Render],
        withheld: Callable[[str], bool],
    ) -> None:
        self._answers = answers
        self._delivery_id = delivery_id
        self.window = window
        self._render = render
        self._withheld = withheld
        self.text: str | None = None  # the response's text, if the commit carried replies

    def plan(self, replies: Sequence[Reply], *, locale: str, owner: str) -> InBandPlan:
        if self._withheld(owner):
            return InBandPlan(0)  # the response is something else (the hand-over to 客服)
        render = self._render(locale)
        shown = [self._answers.opened(reply) for reply in replies]
        fits, text = render(shown)  # the text of the ``fits`` leading replies
        if not fits:
            return InBandPlan(0)
        self.text = text
        return InBandPlan(fits, self._answers.record(self._delivery_id, self.text, self.window.clock.now()))


class PassiveAnswers:
    def __init__(
        self,
        db: AsyncEngine,
        store: PassiveStore,
        appid: str,
        *,
        wake: Callable[[list[OutboundMessage]], None] = lambda _messages: None,
        poll: float = 0.05,
        box: SecretBox | None = None,
    ) -> None:
        self.db = db
        self.store = store
        self.appid = appid
        self.wake = wake  # tells the dispatcher that released replies are due
        self.poll = poll
        # Opens private replies for the recipient and seals the recorded answer; without it
        # the masked copy is answered and recorded, never an error.
        self.box = box
        # prepared once, on every passive answer's path: the first record of a delivery (its
        # answer, or None while a retry's answer is being decided) and its later answer
        table = wechat_deliveries
        self._first_record = (
            insert_for(db.dialect.name)(table)
            .values(
                appid=sa.bindparam("appid"),
                delivery_id=sa.bindparam("delivery_id"),
                body=sa.bindparam("body"),
                created_at=sa.bindparam("created_at"),
            )
            .on_conflict_do_nothing()
        )
        self._recording = (
            table.update()
            # a WHERE placeholder may not share a column's name in an UPDATE (SQLAlchemy)
            .where(
                table.c.appid == sa.bindparam("b_appid"), table.c.delivery_id == sa.bindparam("b_delivery_id")
            )
            .values(body=sa.bindparam("body"))
        )

    def _where(self, delivery_id: str) -> sa.ColumnElement[bool]:
        return sa.and_(
            wechat_deliveries.c.appid == self.appid, wechat_deliveries.c.delivery_id == delivery_id
        )

    async def _reserve(self, delivery_id: str, now: datetime) -> bool:
        params = {"appid": self.appid, "delivery_id": delivery_id, "body": None, "created_at": now}
        return await self.store.write(self._first_record, params) == 1

    async def recorded(self, delivery_id: str) -> str | None:
        async with self.db.connect() as conn:
            body = (
                await conn.execute(sa.select(wechat_deliveries.c.body).where(self._where(delivery_id)))
            ).scalar()
        return self._unseal(str(body)) if body is not None else None

    async def _record(self, delivery_id: str, body: str) -> None:
        params = {"b_appid": self.appid, "b_delivery_id": delivery_id, "body": self._sealed(body)}
        await self.store.write(self._recording, params)

    def _sealed(self, body: str) -> str:
        return body if self.box is None or body == SUCCESS else json.dumps(self.box.seal(body))

    def record(self, delivery_id: str, body: str, now: datetime) -> SideWrite:
        """The record of a delivery's answer, written with the commit that decided it."""
        params = {
            "appid": self.appid,
            "delivery_id": delivery_id,
            "body": self._sealed(body),
            "created_at": now,
        }
        return SideWrite(self._first_record, params)

    def offer(
        self,
        delivery_id: str,
        window: AnswerWindow,
        *,
        render: Callable[[str], Render],
        withheld: Callable[[str], bool] = lambda _owner: False,
    ) -> PassiveOffer:
        """The offer for one callback: ``render`` gives, for the user's locale, how many
        replies fit and their text; ``withheld`` says, from the owner after the handling,
        that the response will not carry replies at all."""
        return PassiveOffer(self, delivery_id, window, render, withheld)

    def _unseal(self, stored: str) -> str:
        if self.box is None or not stored.startswith("{"):
            return stored
        try:
            sealed = json.loads(stored)
        except ValueError:
            return stored
        return str(self.box.open(sealed)) if is_sealed(sealed) else stored

    def opened(self, reply: Reply) -> Reply:
        """A private reply opened for its recipient, as the customer-service API sends it."""
        return opened(reply, self.box)

    async def answer(
        self,
        delivery_id: str,
        messages: Sequence[OutboundMessage],
        *,
        render: Callable[[list[Reply]], tuple[int, str]] = passive_text,
        clock: Clock,
        deadline: datetime,
    ) -> str | None:
        """The passive reply text for this delivery (None: answer "success").

        Nothing is claimed at or after ``deadline`` (the store reads ``clock`` inside the
        claiming transaction); what this answer does not carry is due at once, through the
        customer-service API."""
        if await self._reserve(delivery_id, clock.now()):
            text, carried = await self._claim(messages, render, clock, deadline)
            rest = [m.outbox_id for m in messages if m.outbox_id not in carried]
            if rest:
                await self.release([m for m in messages if m.outbox_id in rest], clock.now())
            await self._record(delivery_id, text if text is not None else SUCCESS)
            return text
        while True:
            body = await self.recorded(delivery_id)
            if body is not None:
                return None if body == SUCCESS else body
            if clock.now() >= deadline:
                return None
            await asyncio.sleep(self.poll)

    async def release(self, messages: Sequence[OutboundMessage], now: datetime) -> None:
        """Replies no passive answer will carry go out now, not when their hold ends."""
        if await self.store.release_passive([m.outbox_id for m in messages], now):
            self.wake(list(messages))

    async def _claim(
        self,
        messages: Sequence[OutboundMessage],
        render: Callable[[list[Reply]], tuple[int, str]],
        clock: Clock,
        deadline: datetime,
    ) -> tuple[str | None, set[int]]:
        fits, _ = render([self.opened(m.reply) for m in messages])
        # in order, all at once: the store stops at a reply the dispatcher already took, so
        # nothing later can overtake it in the chat
        claimed = await self.store.claim_passive(
            [m.outbox_id for m in messages[:fits]], now=clock, until=deadline
        )
        if not claimed:
            return None, set()
        _, text = render([self.opened(m.reply) for m in claimed])
        return text, {m.outbox_id for m in claimed}

    async def forget_before(self, cutoff: datetime) -> int:
        return await self.store.write(
            wechat_deliveries.delete().where(
                wechat_deliveries.c.appid == self.appid, wechat_deliveries.c.created_at < cutoff
            )
        )
