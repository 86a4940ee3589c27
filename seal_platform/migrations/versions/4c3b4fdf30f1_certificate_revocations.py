"""certificate revocations and the signed CRL in the platform database (were a file under data_dir)

Revision ID: 4c3b4fdf30f1
Revises: 4006ae236a76
Create Date: 2026-11-30 07:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "4c3b4fdf30f1"
down_revision = "4006ae236a76"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "certificate_revocations",
        sa.Column("serial_hex", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("order_id", sa.String(length=36), nullable=True),
        sa.PrimaryKeyConstraint("serial_hex", name=op.f("pk_certificate_revocations")),
    )
    op.create_table(
        "certificate_revocation_lists",
        sa.Column("number", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("this_update", sa.DateTime(timezone=True), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("der", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("number", name=op.f("pk_certificate_revocation_lists")),
    )


def downgrade() -> None:
    op.drop_table("certificate_revocation_lists")
    op.drop_table("certificate_revocations")
