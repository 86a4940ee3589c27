"""Subscription-message consent, as WeChat reports it in events, for reminders to use.

``subscribe_msg_popup_event`` (the user answered the popup) and ``subscribe_msg_change_event``
(they changed it in settings) set the status; a one-time (一次性) consent is spent by a send.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.channels.wechat.tables import wechat_subscriptions

ACCEPT = "accept"
REJECT = "reject"
USED = "used"


@dataclass(frozen=True)
class Consent:
    openid: str
    template_id: str
    status: str
    updated_at: datetime


class SubscriptionConsents:
    def __init__(self, db: AsyncEngine, appid: str) -> None:
        self.db = db
        self.appid = appid

    def _where(self, openid: str, template_id: str) -> sa.ColumnElement[bool]:
        return sa.and_(
            wechat_subscriptions.c.appid == self.appid,
            wechat_subscriptions.c.openid == openid,
            wechat_subscriptions.c.template_id == template_id,
        )

    async def record(self, openid: str, template_id: str, status: str, now: datetime) -> None:
        status = status.lower()
        if status not in (ACCEPT, REJECT):
            status = REJECT  # "ban" and unknown values: do not send
        async with self.db.begin() as conn:
            result = await conn.execute(
                wechat_subscriptions.update()
                .where(self._where(openid, template_id))
                .values(status=status, updated_at=now)
            )
            if result.rowcount == 0:
                await conn.execute(
                    wechat_subscriptions.insert().values(
                        appid=self.appid,
                        openid=openid,
                        template_id=template_id,
                        status=status,
                        updated_at=now,
                    )
                )

    async def get(self, openid: str, template_id: str) -> Consent | None:
        async with self.db.connect() as conn:
            row = (
                await conn.execute(sa.select(wechat_subscriptions).where(self._where(openid, template_id)))
            ).first()
        if row is None:
            return None
        return Consent(row.openid, row.template_id, row.status, row.updated_at)

    async def may_send(self, openid: str, template_id: str) -> bool:
        consent = await self.get(openid, template_id)
        return consent is not None and consent.status == ACCEPT

    async def spend(self, openid: str, template_id: str, now: datetime) -> bool:
        """Use up a one-time consent; False when there was none to use (someone else did)."""
        async with self.db.begin() as conn:
            result = await conn.execute(
                wechat_subscriptions.update()
                .where(self._where(openid, template_id), wechat_subscriptions.c.status == ACCEPT)
                .values(status=USED, updated_at=now)
            )
        return bool(result.rowcount == 1)
