"""Companies an account applies for: name, unified social credit code and legal representative.

The legal representative's ID number is sensitive: it is stored encrypted (AES-GCM through
``security``) and only a masked copy is ever shown.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from dbkit.types import UtcDateTime
from seal_platform.db import Base
from seal_platform.errors import InvalidInput, NotFound
from seal_platform.services import PlatformServices
from seal_platform.validation import (
    mask_id_number,
    normalise_credit_code,
    normalise_person_name,
    normalise_resident_id,
)

# Associated data of the ciphertext: it decrypts only as a company's legal representative ID.
LEGAL_REP_ID_CONTEXT = "company.legal_rep_id"


class Company(Base):
    __tablename__ = "companies"
    __table_args__ = (UniqueConstraint("account_id", "uscc"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    uscc: Mapped[str] = mapped_column(String(18))
    legal_rep_name: Mapped[str] = mapped_column(String(100))
    legal_rep_id_encrypted: Mapped[str] = mapped_column(String(512))
    legal_rep_id_masked: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


async def upsert_company(
    session: AsyncSession,
    services: PlatformServices,
    *,
    account_id: str,
    name: str,
    uscc: str,
    legal_rep_name: str,
    legal_rep_id: str,
) -> Company:
    """The account's company with this credit code, created or updated with these details."""
    now = services.clock.now()
    uscc = normalise_credit_code(uscc)
    legal_rep_id = normalise_resident_id(legal_rep_id, today=now.date())
    name = " ".join(name.split())
    if not 2 <= len(name) <= 200:
        raise InvalidInput("单位名称应为2到200个字", code="invalid_company_name")
    legal_rep_name = normalise_person_name(legal_rep_name)
    company = await session.scalar(
        select(Company).where(Company.account_id == account_id, Company.uscc == uscc)
    )
    if company is None:
        company = Company(account_id=account_id, uscc=uscc, created_at=now)
        session.add(company)
    company.name = name
    company.legal_rep_name = legal_rep_name
    company.legal_rep_id_encrypted = services.field_cipher.encrypt(legal_rep_id, context=LEGAL_REP_ID_CONTEXT)
    company.legal_rep_id_masked = mask_id_number(legal_rep_id)
    company.updated_at = now
    await session.flush()
    return company


async def get_company(session: AsyncSession, account_id: str, company_id: str) -> Company:
    company = await session.get(Company, company_id)
    if company is None or company.account_id != account_id:
        raise NotFound("company not found", company_id=company_id)
    return company


async def list_companies(session: AsyncSession, account_id: str) -> list[Company]:
    rows = await session.scalars(
        select(Company).where(Company.account_id == account_id).order_by(Company.created_at)
    )
    return list(rows)


def legal_rep_id(services: PlatformServices, company: Company) -> str:
    """The clear ID number, for production (the certificate subject) only."""
    return services.field_cipher.decrypt(company.legal_rep_id_encrypted, context=LEGAL_REP_ID_CONTEXT)
