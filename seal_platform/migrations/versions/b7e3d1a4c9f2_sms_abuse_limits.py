"""sms codes: who asked (chat identity, client IP) and the captcha that allowed the send

Revision ID: b7e3d1a4c9f2
Revises: c70fad1f1209
Create Date: 2026-11-30 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "b7e3d1a4c9f2"
down_revision = "c70fad1f1209"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sms_codes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("identity", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("client_ip", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("captcha_nonce", sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f("ix_sms_codes_identity"), ["identity"], unique=False)
        batch_op.create_index(batch_op.f("ix_sms_codes_client_ip"), ["client_ip"], unique=False)
        batch_op.create_index(batch_op.f("ix_sms_codes_created_at"), ["created_at"], unique=False)
        batch_op.create_unique_constraint(batch_op.f("uq_sms_codes_captcha_nonce"), ["captcha_nonce"])


def downgrade() -> None:
    with op.batch_alter_table("sms_codes", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_sms_codes_captcha_nonce"), type_="unique")
        batch_op.drop_index(batch_op.f("ix_sms_codes_created_at"))
        batch_op.drop_index(batch_op.f("ix_sms_codes_client_ip"))
        batch_op.drop_index(batch_op.f("ix_sms_codes_identity"))
        batch_op.drop_column("captcha_nonce")
        batch_op.drop_column("client_ip")
        batch_op.drop_column("identity")
