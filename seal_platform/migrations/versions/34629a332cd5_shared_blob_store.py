"""shared blob store: documents and CA material in the database, readable from every host

Revision ID: 34629a332cd5
Revises: b7e3d1a4c9f2
Create Date: 2026-11-30 07:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "34629a332cd5"
down_revision = "b7e3d1a4c9f2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "platform_blobs",
        sa.Column("namespace", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("namespace", "key", name=op.f("pk_platform_blobs")),
    )


def downgrade() -> None:
    op.drop_table("platform_blobs")
