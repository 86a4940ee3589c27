"""bridge jobs: the PC the user chose for the job, when several have the seal's UKey

Revision ID: 15f8927eee38
Revises: 9b2f6c1e8a47
Create Date: 2026-11-30 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "15f8927eee38"
down_revision = "9b2f6c1e8a47"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bridge_jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("device_choice", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("bridge_jobs", schema=None) as batch_op:
        batch_op.drop_column("device_choice")
