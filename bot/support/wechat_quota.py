"""The WeChat customer-service (客服) allowance as the staff view shows it.

Staff replies travel through the outbox and the WeChat sender, which takes from this same
allowance (and defers what does not fit); this adapter only reads it.
"""

from __future__ import annotations

from datetime import datetime

from bot.channels.wechat.quota import CustomerServiceQuota
from bot.engine.messages import ConversationKey
from bot.support.quota import QuotaLeft


class WeChatQuotaReader:
    channel = "wechat"

    def __init__(self, quota: CustomerServiceQuota) -> None:
        self._quota = quota

    async def remaining(self, key: ConversationKey, now: datetime) -> QuotaLeft:
        allowance = await self._quota.get(key.user_id, now)
        waiting = len(await self._quota.backlog(key.user_id))
        if allowance is None or allowance.expires_at <= now:
            return QuotaLeft(
                left=0, allowance=allowance.allowance if allowance else 0, window_ends=None, waiting=waiting
            )
        return QuotaLeft(
            left=allowance.left(now),
            allowance=allowance.allowance,
            window_ends=allowance.expires_at,
            waiting=waiting,
        )
