"""production stations paired to staff, so that one can be unpaired

Revision ID: b30022ba7490
Revises: 4c3b4fdf30f1
Create Date: 2026-11-30 07:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "b30022ba7490"
down_revision = "4c3b4fdf30f1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "station_devices",
        sa.Column("device_id", sa.String(length=96), nullable=False),
        sa.Column("staff_username", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("paired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("device_id", name=op.f("pk_station_devices")),
    )
    with op.batch_alter_table("station_devices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_station_devices_staff_username"), ["staff_username"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("station_devices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_station_devices_staff_username"))
    op.drop_table("station_devices")
