"""Reaching a user who is not in a conversation right now: the port a channel implements.

Most channels can always send a chat message (Telegram, the web chat), and reminders go through
the engine's outbox like any other message. WeChat cannot: outside the 48-hour customer-service
window only a template message or a one-time subscription message (一次性订阅, one send per user
consent) gets through. A channel with such rules implements ``ProactiveDelivery``; the reminder
job asks it how the user can be reached before choosing the route.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal, Protocol

from bot.engine.messages import ConversationKey


class Reach(StrEnum):
    SESSION = "session"  # a normal chat message gets through: use the outbox
    NOTICE = "notice"  # only a template / subscription message (``send_notice``)
    NONE = "none"  # nothing may be sent: no window and no consent


@dataclass(frozen=True)
class ReminderNotice:
    """A reminder rendered for a template or subscription message: short fields plus the full
    text, and the start parameter that opens the renewal of this seal (``renew-<seal id>``,
    see ``bot.channels.deep_link``)."""

    seal_id: str
    seal_name: str
    seal_kind: str
    threshold: int
    valid_to: str  # the expiry date in the user's zone, YYYY-MM-DD
    days_left: int  # negative after expiry
    locale: str
    title: str
    text: str
    action_label: str
    start_payload: str


class NoticeRefused(Exception):
    """The channel refused for good: retrying cannot help (the user blocked or unfollowed the
    account, or gave no consent). Transient failures raise ``bot.errors.DeliveryFailed``."""

    def __init__(self, outcome: Literal["blocked", "no_consent"], reason: str) -> None:
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason


class ProactiveDelivery(Protocol):
    channel: str

    async def reach(self, key: ConversationKey, now: datetime) -> Reach:
        """How this user can be reached now (the window, then recorded consent)."""
        ...

    async def send_notice(self, key: ConversationKey, notice: ReminderNotice) -> None:
        """One template or subscription message (consuming a one-time consent); raises
        ``NoticeRefused`` or ``DeliveryFailed``."""
        ...
