"""The engine's tables (SQLAlchemy Core, on the bot's metadata)."""

from __future__ import annotations

import sqlalchemy as sa

from bot.db import Base
from dbkit.blobs import blob_table

metadata = Base.metadata

conversations = sa.Table(
    "conversations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("account", sa.String(64), nullable=False),
    sa.Column("user_id", sa.String(128), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("state", sa.JSON, nullable=False),
    # Denormalised from ``state`` so that queries need not open the JSON.
    sa.Column("owner", sa.String(80), nullable=False, server_default="bot"),
    sa.Column("platform_account_id", sa.String(64), nullable=True, index=True),
    sa.Column("flow", sa.String(64), nullable=True),
    sa.Column("wait_deadline", sa.DateTime(timezone=True), nullable=True, index=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_inbound_at", sa.DateTime(timezone=True), nullable=True),
    sa.UniqueConstraint("channel", "account", "user_id", name="uq_conversations_key"),
)

inbound_receipts = sa.Table(
    "inbound_receipts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("conversation_id", sa.Integer, sa.ForeignKey("conversations.id"), nullable=False),
    sa.Column("message_id", sa.String(160), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    # What the user sent, masked (ID numbers and phones) or sealed for sensitive steps.
    sa.Column("body", sa.JSON, nullable=False),
    sa.Column("reply_ids", sa.JSON, nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.UniqueConstraint("conversation_id", "message_id", name="uq_inbound_receipts_message"),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("conversation_id", sa.Integer, sa.ForeignKey("conversations.id"), nullable=False, index=True),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("origin", sa.String(16), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    # pending -> sending -> sent | failed | held (bot message while staff own the conversation)
    # | passive (carried by a synchronous webhook answer, e.g. the WeChat passive reply)
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
    # the worker that holds the lease (SqlConversationStore.worker_id): a dead worker's leases
    # are taken back at once by the others, not when they run out
    sa.Column("leased_by", sa.String(32), nullable=True),
    sa.Column("in_reply_to", sa.String(160), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
)
# What "the oldest undelivered message of its conversation" looks up on every claim: the rows
# still to be delivered, a handful however long the conversation's history. A planner takes a
# partial index only for a query that states its condition in the same words, so the queries
# spell this condition out literally (``UNDELIVERED_SQL``), never with bound parameters.
UNDELIVERED_SQL = "status IN ('pending', 'sending')"
sa.Index(
    "ix_outbox_undelivered",
    outbox.c.conversation_id,
    outbox.c.id,
    sqlite_where=sa.text(UNDELIVERED_SQL),
    postgresql_where=sa.text(UNDELIVERED_SQL),
)

event_cursor = sa.Table(
    "event_cursors",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

# Files passing through chats when they are kept in the database (``bot.engine.media``): every
# worker on every host reads what another one stored.
blobs = blob_table(metadata, "bot_blobs")
