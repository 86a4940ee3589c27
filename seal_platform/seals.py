"""Seals: an enterprise seal or a legal representative's personal seal, on a UKey.

A seal belongs to the account that applied for it and to a company. Its certificate and its
SESeal are remade on renewal, change and reissue (the seal lists the signer certificate), so the
row keeps the current serials and validity; unlock touches only the key's PIN.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import ForeignKey, String, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from seal_platform.db import Base
from seal_platform.errors import NotFound, RuleViolation
from seal_platform.events import UtcDateTime


class SealKind(StrEnum):
    ENTERPRISE = "enterprise"
    PERSONAL = "personal"


class SealStatus(StrEnum):
    IN_PRODUCTION = "in_production"
    ACTIVE = "active"
    LOCKED = "locked"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class Seal(Base):
    __tablename__ = "seals"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)
    # What the impression shows: the company name, or the legal representative's name.
    holder_name: Mapped[str] = mapped_column(String(200))
    # The 13-digit seal code on the lower arc of an enterprise impression.
    seal_code: Mapped[str] = mapped_column(String(13), unique=True)
    certificate_serial: Mapped[str | None] = mapped_column(String(64), default=None)
    certificate_pem: Mapped[str | None] = mapped_column(String(8192), default=None)
    valid_from: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    valid_to: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None, index=True)
    key_serial: Mapped[str | None] = mapped_column(String(64), default=None)
    # Issuer-held SO PIN of the key (encrypted): supplied to the bridge for a paid unlock job only.
    so_pin_encrypted: Mapped[str | None] = mapped_column(String(512), default=None)
    impression_document_id: Mapped[str | None] = mapped_column(String(36), default=None)
    seseal_document_id: Mapped[str | None] = mapped_column(String(36), default=None)
    created_by_order_id: Mapped[str | None] = mapped_column(String(36), default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


async def get_seal(session: AsyncSession, account_id: str, seal_id: str) -> Seal:
    seal = await session.get(Seal, seal_id)
    if seal is None or seal.account_id != account_id:
        raise NotFound("seal not found", seal_id=seal_id)
    return seal


async def list_seals(session: AsyncSession, account_id: str) -> list[Seal]:
    rows = await session.scalars(select(Seal).where(Seal.account_id == account_id).order_by(Seal.created_at))
    return list(rows)


async def set_status(
    session: AsyncSession, seal: Seal, expected: tuple[SealStatus, ...], to: SealStatus, now: datetime
) -> None:
    """Conditional update: the seal moves only from one of the ``expected`` statuses."""
    result = cast(
        CursorResult[Any],
        await session.execute(
            update(Seal)
            .where(Seal.id == seal.id, Seal.status.in_([s.value for s in expected]))
            .values(status=to.value, updated_at=now)
        ),
    )
    if result.rowcount != 1:
        await session.refresh(seal)
        raise RuleViolation(
            "seal is not in a state that allows this",
            code="invalid_seal_state",
            seal_id=seal.id,
            status=seal.status,
        )
    await session.refresh(seal)


def days_to_expiry(seal: Seal, now: datetime) -> float | None:
    if seal.valid_to is None:
        return None
    return (as_utc(seal.valid_to) - now) / timedelta(days=1)


def renewal_opens_at(seal: Seal, window_days: int) -> datetime | None:
    if seal.valid_to is None:
        return None
    return as_utc(seal.valid_to) - timedelta(days=window_days)


def as_utc(value: datetime) -> datetime:
    # SQLite hands datetimes back naive; everything stored is UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
