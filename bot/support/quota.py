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
    # Messages already kept back until the user writes again.
    waiting: int = 0

    @property
    def exhausted(self) -> bool:
        return self.usable <= 0

    @property
    def usable(self) -> int:
        """What staff can still send: the sender keeps the last slot to tell the user that
        messages wait (they cannot know otherwise that writing again brings them)."""
        return max(0, self.left - 1)

    @property
    def warn(self) -> bool:
        """Warn the agent before the last usable message, not after it."""
        return self.window_ends is not None and self.usable <= 1


class ChannelQuota(Protocol):
    channel: str

    async def remaining(self, key: ConversationKey, now: datetime) -> QuotaLeft: ...
