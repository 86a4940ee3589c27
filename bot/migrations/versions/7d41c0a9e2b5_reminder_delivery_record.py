"""reminder delivery record: channel, provider message id, channels tried, staff follow-up

The statuses become planned / deferred / queued / sent / undeliverable / opted_out /
superseded; the old ones are mapped (their reason stays in last_error).

Revision ID: 7d41c0a9e2b5
Revises: 3c82cd56f851
Create Date: 2026-11-30 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "7d41c0a9e2b5"
down_revision = "3c82cd56f851"
branch_labels = None
depends_on = None

_OLD_TO_NEW = {
    "skipped_quiet": "deferred",
    "failed": "undeliverable",
    "blocked": "undeliverable",
    "no_consent": "undeliverable",
    "no_chat": "undeliverable",
}


def upgrade() -> None:
    with op.batch_alter_table("reminder_deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("channel", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("provider_message_id", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("tried", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("followup", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("followup_by", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("followup_at", sa.DateTime(timezone=True), nullable=True))
    table = sa.table("reminder_deliveries", sa.column("status", sa.String))
    for old, new in _OLD_TO_NEW.items():
        op.execute(table.update().where(table.c.status == old).values(status=new))


def downgrade() -> None:
    table = sa.table("reminder_deliveries", sa.column("status", sa.String))
    op.execute(table.update().where(table.c.status == "deferred").values(status="skipped_quiet"))
    op.execute(table.update().where(table.c.status == "undeliverable").values(status="failed"))
    with op.batch_alter_table("reminder_deliveries", schema=None) as batch_op:
        batch_op.drop_column("followup_at")
        batch_op.drop_column("followup_by")
        batch_op.drop_column("followup")
        batch_op.drop_column("tried")
        batch_op.drop_column("provider_message_id")
        batch_op.drop_column("channel")
