"""Reaching a user who is not in a conversation right now: the ports reminders go through.

Most chat channels can always send a chat message (Telegram, the web chat), and reminders go
through the engine's outbox like any other message. WeChat cannot: outside the 48-hour
customer-service window only a subscription message (订阅通知, one send per user consent) or the
template message (模板消息) of a verified service account gets through. A channel with such
rules implements ``ProactiveDelivery``; the reminder job asks it how the user can be reached
before choosing the route. Beyond chat, ``ReminderSms`` and ``ReminderMail`` are the next steps
of an account's reminder policy.

Every send returns the provider's id of the message. A refusal raises
``bot.errors.DeliveryFailed``: ``retryable=False`` when that channel cannot deliver this reminder
(no consent, bad template, blocked, no address: the next channel is tried), ``retry_after`` when
it can later (a daily quota), neither for a transient failure (retried with backoff).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from bot.engine.messages import ConversationKey


class Reach(StrEnum):
    SESSION = "session"  # a normal chat message gets through: use the outbox
    NOTICE = "notice"  # only a subscription / template message (``send_notice``)
    NONE = "none"  # nothing may be sent: no window, no consent, no template


@dataclass(frozen=True)
class ReminderNotice:
    """A reminder for a subscription or template message: the facts its keyword fields are
    built from, the full text, and the start parameter that opens the renewal of this seal
    (``renew-<seal id>``, see ``bot.channels.deep_link``)."""

    seal_id: str
    seal_name: str
    seal_kind: str
    threshold: int
    valid_to: str  # the expiry date in the reminder zone, YYYY-MM-DD
    days_left: int  # negative after expiry
    locale: str
    title: str
    text: str
    action_label: str
    start_payload: str
    kind_label: str = ""  # 企业印章 / 法人章, in the user's language


class ProactiveDelivery(Protocol):
    channel: str

    async def reach(self, key: ConversationKey, now: datetime) -> str:
        """How this user can be reached now, a ``Reach`` value (the window, then consent)."""
        ...

    async def send_notice(self, key: ConversationKey, notice: ReminderNotice) -> str:
        """One subscription or template message; returns the provider's message id."""
        ...


class ReminderSms(Protocol):
    async def send(self, account_id: str, seal_id: str, threshold: int) -> str:
        """Text the reminder to the account's own phone; returns the provider's reference."""
        ...


class ReminderMail(Protocol):
    async def send(self, account_id: str, seal_id: str, subject: str, text: str) -> str:
        """Mail one reminder to the account's own address; returns its Message-ID."""
        ...
