"""Seals: an enterprise seal or a legal representative's personal seal, on a UKey.

A seal belongs to the account that applied for it and to a company. Its certificate and its
SESeal are remade on renewal, change and reissue (the seal lists the signer certificate), so the
row keeps the current serials and validity; unlock touches only the key's PIN.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, cast

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from sqlalchemy import ForeignKey, String, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from dbkit.blobs import BlobCorrupt, BlobUnavailable, LocalBlobBackend, SealedBlobs, database_lock
from dbkit.types import UtcDateTime
from seal_platform.db import Base
from seal_platform.errors import NotFound, RuleViolation, UpstreamError
from seal_platform.production.ca import (
    CA_FILES,
    CaStoreError,
    CertificateAuthority,
    OrganisationSubject,
    PersonSubject,
)
from seal_platform.production.impression import draw_enterprise_seal, draw_personal_seal
from seal_platform.production.impression import seal_code as make_seal_code
from seal_platform.production.seseal import SealKind as SESealKind
from seal_platform.production.seseal import SealPicture, make_seseal
from seal_platform.services import PlatformServices


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


# -- making a seal's artefacts: certificate, impression, SESeal -----------------------------


@dataclass(frozen=True)
class SealHolder:
    """Whom a seal is made for: the company, or its legal representative."""

    kind: SealKind
    company_name: str
    uscc: str
    legal_rep_name: str
    legal_rep_id: str
    seal_code: str

    @property
    def holder_name(self) -> str:
        return self.company_name if self.kind == SealKind.ENTERPRISE else self.legal_rep_name


@dataclass(frozen=True)
class IssuedSeal:
    certificate_pem: str
    certificate_serial: str
    valid_from: datetime
    valid_to: datetime
    impression_png: bytes
    seseal_der: bytes


CA_LOCK = "seal_platform.ca"


def ca_store(services: PlatformServices) -> SealedBlobs:
    """Where the CA's files are: the shared store the bootstrap chose, else ``data_dir/ca``."""
    if services.ca_store is not None:
        return services.ca_store
    return SealedBlobs(LocalBlobBackend(Path(services.settings.data_dir) / "ca"), None, fanout=0)


async def certificate_authority(services: PlatformServices) -> CertificateAuthority:
    """The platform CA, the same for every process on every host: loaded from the shared store,
    and created by the very first process under a database lock, so that workers starting at
    the same moment make exactly one CA."""
    if services.certificate_authority is not None:
        return services.certificate_authority
    store = ca_store(services)
    secret = services.settings.secret_key.get_secret_value().encode()
    try:
        async with database_lock(services.db.engine, CA_LOCK):
            files = {}
            for name in CA_FILES:
                data = await store.get_named_or_none(name)
                if data is not None:
                    files[name] = data
            ca, changed = await asyncio.to_thread(
                CertificateAuthority.assemble, files, secret, services.clock, where="the CA store"
            )
            for name, data in changed.items():
                await store.put_named(name, data)
    except BlobCorrupt as exc:
        raise CaStoreError(f"a CA file does not open: {exc}") from exc
    except BlobUnavailable as exc:
        raise UpstreamError("the CA store is unreachable", code="storage_unavailable") from exc
    base = services.settings.public_base_url.rstrip("/")
    ca.crl_url, ca.ocsp_url = f"{base}/ca/crl", f"{base}/ca/ocsp"
    if services.certificate_authority is None:
        services.certificate_authority = ca
    return services.certificate_authority


def _issue_sync(
    ca: CertificateAuthority,
    holder: SealHolder,
    public_key: bytes,
    years: int,
    now: datetime,
    valid_to: datetime | None = None,
) -> IssuedSeal:
    subject: OrganisationSubject | PersonSubject
    if holder.kind == SealKind.ENTERPRISE:
        subject = OrganisationSubject(name=holder.company_name, uscc=holder.uscc)
        impression = draw_enterprise_seal(holder.company_name, holder.seal_code)
        seseal_kind = SESealKind.ORGANISATION
    else:
        subject = PersonSubject(
            name=holder.legal_rep_name, id_number=holder.legal_rep_id, organisation=holder.company_name
        )
        impression = draw_personal_seal(holder.legal_rep_name)
        seseal_kind = SESealKind.PERSONAL
    certificate = ca.issue_seal_certificate(public_key, subject, years=years, not_after=valid_to)
    valid_from, valid_to = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    seseal = make_seseal(
        signer=ca.seal_maker,
        es_id=holder.seal_code,
        kind=seseal_kind,
        name=holder.holder_name,
        holder_certificates=[certificate],
        picture=SealPicture(
            data=impression.png, width_mm=impression.width_mm, height_mm=impression.height_mm
        ),
        created_at=now,
        valid_start=valid_from,
        valid_end=valid_to,
    )
    return IssuedSeal(
        certificate_pem=certificate.public_bytes(Encoding.PEM).decode(),
        certificate_serial=format(certificate.serial_number, "x"),
        valid_from=valid_from,
        valid_to=valid_to,
        impression_png=impression.png,
        seseal_der=seseal,
    )


async def issue_seal(
    services: PlatformServices,
    holder: SealHolder,
    public_key: bytes,
    years: int,
    *,
    valid_to: datetime | None = None,
) -> IssuedSeal:
    """Certify ``public_key`` (SubjectPublicKeyInfo DER/PEM or a CSR) for the holder, draw the
    impression and make the SESeal; ``valid_to`` keeps a current term instead of ``years``.
    CPU-bound: runs in a thread."""
    ca = await certificate_authority(services)
    return await asyncio.to_thread(_issue_sync, ca, holder, public_key, years, services.clock.now(), valid_to)


def new_key_pair() -> tuple[bytes, bytes]:
    """A P-256 key pair for a new UKey: (SubjectPublicKeyInfo DER, PKCS#8 DER private key).

    In the embedded default the platform generates the key of a new key (new seal, reissue); a
    production line generates it on the UKey itself and only the public key leaves it.
    """
    private_key = ec.generate_private_key(ec.SECP256R1())
    public = private_key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    private = private_key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
    return public, private


async def allocate_seal_code(session: AsyncSession, uscc: str) -> str:
    """A free 13-digit seal code in the company's area (USCC positions 3-8)."""
    area = uscc[2:8]
    if area[:1] not in "12345678":
        area = "110000"
    for _ in range(20):
        code = make_seal_code(area, secrets.randbelow(1_000_000))
        if await session.scalar(select(Seal.id).where(Seal.seal_code == code)) is None:
            return code
    raise RuleViolation("no free seal code in this area", code="seal_code_exhausted", area=area)


async def expire_due_seals(session: AsyncSession, now: datetime) -> list[str]:
    """Mark seals whose certificate has ended as expired, each with a ``seal.expired`` event.

    For the scheduler; conditional per seal, so two runs at once expire each seal once.
    """
    from seal_platform.events import publish

    due = list(
        await session.scalars(
            select(Seal).where(
                Seal.status.in_([SealStatus.ACTIVE.value, SealStatus.LOCKED.value]), Seal.valid_to <= now
            )
        )
    )
    expired: list[str] = []
    for seal in due:
        moved = cast(
            CursorResult[Any],
            await session.execute(
                update(Seal)
                .where(Seal.id == seal.id, Seal.status == seal.status)
                .values(status=SealStatus.EXPIRED.value, updated_at=now)
                .execution_options(synchronize_session=False)
            ),
        )
        if moved.rowcount == 1:
            publish(
                session,
                seal.account_id,
                "seal.expired",
                {"seal_id": seal.id, "valid_to": seal.valid_to.isoformat() if seal.valid_to else None},
            )
            expired.append(seal.id)
    return expired
