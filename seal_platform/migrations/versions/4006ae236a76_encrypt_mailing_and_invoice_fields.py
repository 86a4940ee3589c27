"""orders.mailing_address and the invoice buyer's title, tax number and e-mail encrypted at rest

The columns become text holding ``<key id>:<ciphertext>`` (seal_platform.field_crypto). Rows
already stored are encrypted here when the migration runner passes the platform's field cipher
(``seal_platform.migrate.upgrade(url, field_cipher)``); without it they stay as they were,
still readable, and ``sealbot rotate-keys`` encrypts them.

Revision ID: 4006ae236a76
Revises: 5d2e8a41c7f3
Create Date: 2026-11-30 07:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

revision = "4006ae236a76"
down_revision = "5d2e8a41c7f3"
branch_labels = None
depends_on = None

# (table, column, associated data of its ciphertexts), as seal_platform.field_crypto has them.
COLUMNS = (
    ("orders", "mailing_address", "orders.mailing_address"),
    ("invoices", "title", "invoices.title"),
    ("invoices", "tax_number", "invoices.tax_number"),
    ("invoices", "email", "invoices.email"),
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # A batch (copy-and-move) alteration would drop ``orders``, which other tables'
        # foreign keys reference; SQLite >= 3.35 changes the column in place instead.
        op.execute("ALTER TABLE orders ADD COLUMN mailing_address_text TEXT")
        op.execute("UPDATE orders SET mailing_address_text = mailing_address")
        op.execute("ALTER TABLE orders DROP COLUMN mailing_address")
        op.execute("ALTER TABLE orders RENAME COLUMN mailing_address_text TO mailing_address")
    else:
        op.alter_column(
            "orders",
            "mailing_address",
            existing_type=sa.JSON(),
            type_=sa.Text(),
            existing_nullable=True,
            postgresql_using="mailing_address::text",
        )
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.alter_column("title", existing_type=sa.String(length=200), type_=sa.Text())
        batch_op.alter_column("tax_number", existing_type=sa.String(length=20), type_=sa.Text())
        batch_op.alter_column("email", existing_type=sa.String(length=200), type_=sa.Text())
    cipher = context.config.attributes.get("field_cipher")
    if cipher is None:
        return
    bind = op.get_bind()
    for table_name, column_name, aad in COLUMNS:
        table = sa.table(table_name, sa.column("id"), sa.column(column_name))
        column = table.c[column_name]
        for row_id, stored in bind.execute(sa.select(table.c.id, column).where(column.is_not(None))).all():
            bind.execute(
                sa.update(table)
                .where(table.c.id == row_id)
                .values({column_name: cipher.encrypt(stored, context=aad)})
            )


def downgrade() -> None:
    # Encrypted values cannot be cast back; a downgrade restores the types of empty columns only.
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.alter_column("email", existing_type=sa.Text(), type_=sa.String(length=200))
        batch_op.alter_column("tax_number", existing_type=sa.Text(), type_=sa.String(length=20))
        batch_op.alter_column("title", existing_type=sa.Text(), type_=sa.String(length=200))
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE orders ADD COLUMN mailing_address_json JSON")
        op.execute("UPDATE orders SET mailing_address_json = mailing_address")
        op.execute("ALTER TABLE orders DROP COLUMN mailing_address")
        op.execute("ALTER TABLE orders RENAME COLUMN mailing_address_json TO mailing_address")
    else:
        op.alter_column(
            "orders",
            "mailing_address",
            existing_type=sa.Text(),
            type_=sa.JSON(),
            existing_nullable=True,
            postgresql_using="mailing_address::json",
        )
