"""sms delivery outcome, the mail outbox, opt-in e-mailed status notices

Revision ID: 5d2e8a41c7f3
Revises: b7e3d1a4c9f2
Create Date: 2026-11-30 07:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "5d2e8a41c7f3"
down_revision = "b7e3d1a4c9f2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sms_codes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("delivery", sa.String(length=16), server_default="sent", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("sms_codes", schema=None) as batch_op:
        batch_op.drop_column("delivery")
