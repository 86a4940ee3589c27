"""How many messages a channel still lets staff send (WeChat's customer-service window)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.engine.messages import ConversationKey


@dataclass(frozen=True)
class QuotaLeft:
    left: int
    allowance: int
    window_ends: datetime | None  # None: no window is open (the user has not written lately)

    @property
    def exhausted(self) -> bool:
        return self.left <= 0


class ChannelQuota(Protocol):
    channel: str

    async def remaining(self, key: ConversationKey, now: datetime) -> QuotaLeft: ...
