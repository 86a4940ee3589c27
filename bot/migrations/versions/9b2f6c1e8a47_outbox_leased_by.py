"""outbox.leased_by: the worker holding a lease, so live workers take back a dead one's at once

Revision ID: 9b2f6c1e8a47
Revises: e5d837f72327
Create Date: 2026-11-30 07:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "9b2f6c1e8a47"
down_revision = "e5d837f72327"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("leased_by", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("leased_by")
