"""A WeChat-like ``ProactiveDelivery``: a session window per user, consent, and notices sent."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from bot.engine.messages import ConversationKey, OutboundMessage
from bot.errors import DeliveryFailed
from scheduler.proactive import Reach, ReminderNotice


@dataclass
class FakeWeChatReach:
    channel: str = "test"
    in_window: set[str] = field(default_factory=set)
    consent: set[str] = field(default_factory=set)
    blocked: set[str] = field(default_factory=set)
    transient_failures: int = 0
    notices: list[tuple[ConversationKey, ReminderNotice]] = field(default_factory=list)

    async def reach(self, key: ConversationKey, now: datetime) -> str:
        if key.user_id in self.in_window:
            return Reach.SESSION
        return Reach.NOTICE if key.user_id in self.consent else Reach.NONE

    async def send_notice(self, key: ConversationKey, notice: ReminderNotice) -> str:
        if key.user_id in self.blocked:
            raise DeliveryFailed("wechat: the user unfollowed the account (43004)", retryable=False)
        if self.transient_failures > 0:
            self.transient_failures -= 1
            raise DeliveryFailed("system busy (-1)")
        self.consent.discard(key.user_id)  # one-time subscription: one send per consent
        self.notices.append((key, notice))
        return f"msg-{len(self.notices)}"


class BlockedSender:
    """A chat channel whose user blocked the bot, worded as the Telegram sender words it."""

    channel = "test"

    async def send(self, message: OutboundMessage) -> None:
        raise DeliveryFailed("telegram refused: Forbidden: bot was blocked by the user", retryable=False)
