"""The support desk's tables, on the bot's metadata (``bot.db.Base``), all prefixed ``support_``.

A ticket is one stay of a conversation with staff: it opens when the user asks for a human
(or staff pick the conversation up), is claimed by one agent, and is resolved when the
conversation goes back to the bot. At most one ticket per conversation is open, which the
partial unique index enforces even between workers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from bot.db import Base
from dbkit.types import UtcDateTime


class TicketState:
    WAITING = "waiting"
    CLAIMED = "claimed"
    RESOLVED = "resolved"


class TicketReason:
    """How the conversation reached staff."""

    ASKED = "asked"  # the user asked for a human (人工, a menu item, /human)
    FAILURES = "failures"  # after repeated refused answers at one step
    PICKED_UP = "picked_up"  # staff took it over from the console


class SupportTicket(Base):
    __tablename__ = "support_tickets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation: Mapped[str] = mapped_column(String(260), index=True)  # str(ConversationKey)
    channel: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), index=True)
    agent: Mapped[str | None] = mapped_column(String(80), nullable=True)
    reason: Mapped[str] = mapped_column(String(32))
    # where the flow was when staff were called: shown in the inbox
    flow: Mapped[str | None] = mapped_column(String(64), nullable=True)
    step: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    resolution: Mapped[str | None] = mapped_column(String(32), nullable=True)
    last_user_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_staff_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # the oldest user message no staff message has answered yet (None: nothing pending)
    awaiting_since: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    escalated_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)

    __table_args__ = (
        Index(
            "uq_support_tickets_open",
            "conversation",
            unique=True,
            sqlite_where=text("state != 'resolved'"),
            postgresql_where=text("state != 'resolved'"),
        ),
    )

    @property
    def last_activity(self) -> datetime:
        moments = [self.created_at, self.claimed_at, self.last_user_at, self.last_staff_at]
        return max(m for m in moments if m is not None)


class SupportAudit(Base):
    """Every ownership change and every staff message: who, what, on which conversation."""

    __tablename__ = "support_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(32), index=True)
    conversation: Mapped[str] = mapped_column(String(260), index=True)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class CannedAnswer(Base):
    __tablename__ = "support_canned_answers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(80))
    text: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class StaffSessionRow(Base):
    """A console login. Only the token's hash is stored; ``csrf`` guards every form post."""

    __tablename__ = "support_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(64))
    roles: Mapped[list[str]] = mapped_column(JSON)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class TelegramTopic(Base):
    """The forum topic of a conversation in the Telegram staff group (one per conversation)."""

    __tablename__ = "support_telegram_topics"

    conversation: Mapped[str] = mapped_column(String(260), primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    thread_id: Mapped[int] = mapped_column(BigInteger)
    closed: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (Index("uq_support_telegram_topics_thread", "chat_id", "thread_id", unique=True),)


SUPPORT_TABLES = [
    SupportTicket.__table__,
    SupportAudit.__table__,
    CannedAnswer.__table__,
    StaffSessionRow.__table__,
    TelegramTopic.__table__,
]
