"""shared blob store: chat media in the database, readable from every host

Revision ID: e5d837f72327
Revises: 7d41c0a9e2b5
Create Date: 2026-11-30 07:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "e5d837f72327"
down_revision = "7d41c0a9e2b5"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bot_blobs",
        sa.Column("namespace", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("namespace", "key", name=op.f("pk_bot_blobs")),
    )


def downgrade() -> None:
    op.drop_table("bot_blobs")
