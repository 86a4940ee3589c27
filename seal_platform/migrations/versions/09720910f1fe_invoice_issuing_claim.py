"""the claim of an invoice being issued through the provider (one caller at a time), and the
provider's serial number of a request whose result had not come back

Revision ID: 09720910f1fe
Revises: b30022ba7490
Create Date: 2026-11-30 08:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "09720910f1fe"
down_revision = "b30022ba7490"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("issuing_since", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("provider_serial", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_column("provider_serial")
        batch_op.drop_column("issuing_since")
