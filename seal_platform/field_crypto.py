"""Personal data in ordinary columns, encrypted at rest with the platform's field cipher.

``EncryptedText`` and ``EncryptedJSON`` are column types: the ORM writes ciphertext
(``<key id>:<base64>``, see ``seal_platform.security.FieldCipher``) and reads back the clear
value, so the code that reads an order's mailing address or an invoice's title is unchanged and
never sees a ciphertext. The cipher is the one of the database it travels through: it is bound
to the engine's dialect when the platform's services are built (``bind_field_cipher``); a
statement on an engine without one refuses to write instead of storing the value in clear.

Values written before encryption (clear text, or JSON) still read; the migration that introduced
encryption encrypts them when it is given the cipher, and ``sealbot rotate-keys`` encrypts any
left and re-encrypts every value not under the current key (``rotate_fields``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.types import Text, TypeDecorator

from seal_platform.security import FieldCipher

_DIALECT_ATTRIBUTE = "sealbot_field_cipher"
# What a stored ciphertext looks like; anything else is a value written before encryption.
_CIPHERTEXT = re.compile(r"^(?:v1|[0-9a-f]{12}):[A-Za-z0-9_=-]{20,}$")


class FieldCipherMissing(RuntimeError):
    """A personal value was written or read through an engine without a field cipher."""


def bind_field_cipher(engine: AsyncEngine, cipher: FieldCipher) -> None:
    """Let the encrypted column types of statements on ``engine`` use ``cipher``."""
    setattr(engine.sync_engine.dialect, _DIALECT_ATTRIBUTE, cipher)


def _cipher_of(dialect: Dialect) -> FieldCipher:
    cipher = getattr(dialect, _DIALECT_ATTRIBUTE, None)
    if not isinstance(cipher, FieldCipher):
        raise FieldCipherMissing("this engine has no field cipher (seal_platform.field_crypto)")
    return cipher


def is_ciphertext(stored: str) -> bool:
    return _CIPHERTEXT.match(stored) is not None


class EncryptedText(TypeDecorator[str]):
    """A string column whose values are stored encrypted under ``context``."""

    impl = Text
    cache_ok = True

    def __init__(self, context: str) -> None:
        super().__init__()
        self.context = context

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return _cipher_of(dialect).encrypt(value, context=self.context)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None or not is_ciphertext(value):
            return value
        return _cipher_of(dialect).decrypt(value, context=self.context)


class EncryptedJSON(TypeDecorator[dict[str, Any]]):
    """A JSON object column whose serialised form is stored encrypted under ``context``."""

    impl = Text
    cache_ok = True

    def __init__(self, context: str) -> None:
        super().__init__()
        self.context = context

    def process_bind_param(self, value: dict[str, Any] | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        plain = json.dumps(value, ensure_ascii=False, sort_keys=True)
        return _cipher_of(dialect).encrypt(plain, context=self.context)

    def process_result_value(self, value: str | None, dialect: Dialect) -> dict[str, Any] | None:
        if value is None:
            return None
        plain = _cipher_of(dialect).decrypt(value, context=self.context) if is_ciphertext(value) else value
        loaded: dict[str, Any] | None = json.loads(plain)
        return loaded


@dataclass(frozen=True)
class EncryptedColumn:
    table: str
    column: str
    context: str


# Every column of the platform that holds a value of the field cipher. The first four were
# encrypted by their modules before the column types existed; the rest use the column types.
ENCRYPTED_COLUMNS = (
    EncryptedColumn("accounts", "id_number_enc", "account.id_number"),
    EncryptedColumn("companies", "legal_rep_id_encrypted", "company.legal_rep_id"),
    EncryptedColumn("seals", "so_pin_encrypted", "seal.so_pin"),
    EncryptedColumn("orders", "mailing_address", "orders.mailing_address"),
    EncryptedColumn("invoices", "title", "invoices.title"),
    EncryptedColumn("invoices", "tax_number", "invoices.tax_number"),
    EncryptedColumn("invoices", "email", "invoices.email"),
)

_BATCH = 200


def _up_to_date(cipher: FieldCipher, stored: str) -> bool:
    """Encrypted, and under the current key."""
    return is_ciphertext(stored) and cipher.is_current(stored)


def rotate_fields(connection: Connection, cipher: FieldCipher, *, commit_each_batch: bool = True) -> int:
    """Encrypt clear values and re-encrypt values not under the current key; returns how many.

    Each value is replaced by one compare-and-set UPDATE (``WHERE value = <what was read>``), so
    a value rewritten meanwhile by the application is left alone, and a run killed at any point
    leaves every value readable with the old or the new key; run again, it finishes the work.
    """
    changed = 0
    for spec in ENCRYPTED_COLUMNS:
        table = sa.table(spec.table, sa.column("id"), sa.column(spec.column))
        column = table.c[spec.column]
        after = ""
        while True:
            rows = connection.execute(
                sa.select(table.c.id, column)
                .where(column.is_not(None), table.c.id > after)
                .order_by(table.c.id)
                .limit(_BATCH)
            ).all()
            if not rows:
                break
            after = rows[-1][0]
            for row_id, stored in rows:
                if _up_to_date(cipher, stored):
                    continue
                plain = cipher.decrypt(stored, context=spec.context) if is_ciphertext(stored) else stored
                fresh = cipher.encrypt(plain, context=spec.context)
                result = connection.execute(
                    sa.update(table)
                    .where(table.c.id == row_id, column == stored)
                    .values({spec.column: fresh})
                )
                changed += result.rowcount
            if commit_each_batch:
                connection.commit()
    return changed


def left_to_rotate(connection: Connection, cipher: FieldCipher) -> int:
    """Values not yet under the current key (clear ones included)."""
    left = 0
    for spec in ENCRYPTED_COLUMNS:
        table = sa.table(spec.table, sa.column(spec.column))
        column = table.c[spec.column]
        for (stored,) in connection.execute(sa.select(column).where(column.is_not(None))):
            if not _up_to_date(cipher, stored):
                left += 1
    return left
