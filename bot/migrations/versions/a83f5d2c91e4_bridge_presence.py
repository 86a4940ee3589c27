"""bridge presence: open bridge connections, visible to every worker

Revision ID: a83f5d2c91e4
Revises: 15f8927eee38
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "a83f5d2c91e4"
down_revision = "15f8927eee38"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bridge_presence",
        sa.Column("device_id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("worker_id", sa.String(length=32), nullable=False),
        sa.Column("connection_id", sa.String(length=32), nullable=False),
        sa.Column("tokens", sa.JSON(), nullable=True),
        sa.Column("connected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("device_id", name=op.f("pk_bridge_presence")),
    )
    with op.batch_alter_table("bridge_presence", schema=None) as batch_op:
        batch_op.create_index("ix_bridge_presence_account_seen", ["account_id", "last_seen"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("bridge_presence", schema=None) as batch_op:
        batch_op.drop_index("ix_bridge_presence_account_seen")
    op.drop_table("bridge_presence")
