"""outbox: a partial index of undelivered rows per conversation, for the dispatcher's claim

Revision ID: c4e19b7d2f60
Revises: a83f5d2c91e4
Create Date: 2026-11-30 13:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c4e19b7d2f60"
down_revision = "a83f5d2c91e4"
branch_labels = None
depends_on = None

UNDELIVERED = "status IN ('pending', 'sending')"


def upgrade() -> None:
    op.create_index(
        "ix_outbox_undelivered",
        "outbox",
        ["conversation_id", "id"],
        unique=False,
        sqlite_where=sa.text(UNDELIVERED),
        postgresql_where=sa.text(UNDELIVERED),
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_undelivered", table_name="outbox")
