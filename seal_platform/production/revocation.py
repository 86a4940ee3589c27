"""Revoked seal certificates, the CRL and OCSP answers of the platform CA.

Revocations are rows of the platform database (``certificate_revocations``), written in the
same transaction as the change that makes the old certificate void (cancellation, the reissue,
the completed renewal or change): a seal is never recorded as replaced while its old
certificate is still good, and every platform process on every host sees the same list.

The signed CRL is kept in the database too (``certificate_revocation_lists``, the latest one).
A CRL is served as it is while it lists every revocation and is less than ``CRL_REFRESH`` old;
otherwise a new one is signed (so a revocation is in the very next CRL fetched) and stored.
Each CRL is valid for ``CRL_VALIDITY`` (its nextUpdate), so a relying party never holds an
expired one. The CRL number grows with every new CRL; it starts above the Unix time, which is
what the earlier file-based list used, so numbers never go back after an upgrade.

A ``revoked.json`` left by that earlier version under ``data_dir/ca`` is imported once into
the table (then renamed ``revoked.json.imported``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from sqlalchemy import BigInteger, Integer, LargeBinary, String, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from dbkit.types import UtcDateTime
from seal_platform.db import Base
from seal_platform.orders import Order, OrderType
from seal_platform.production.ca import RevokedEntry
from seal_platform.seals import as_utc, certificate_authority
from seal_platform.services import PlatformServices

CRL_VALIDITY = timedelta(days=2)
CRL_REFRESH = timedelta(days=1)
OCSP_VALIDITY = timedelta(hours=1)
_LEGACY_FILE = "revoked.json"
# Data directories whose earlier file is known to be gone (imported, or never there): a CRL or
# OCSP request then skips the file system. The file exists only from before an upgrade.
_legacy_done: set[Path] = set()


class RevocationReason:
    """The RFC 5280 reason each process gives."""

    CANCELLED = x509.ReasonFlags.cessation_of_operation
    KEY_LOST = x509.ReasonFlags.key_compromise
    RENEWED = x509.ReasonFlags.superseded
    CHANGED = x509.ReasonFlags.affiliation_changed


class CertificateRevocation(Base):
    """One revoked certificate of the issuing CA, with its first reason and date."""

    __tablename__ = "certificate_revocations"

    # lower-case hex without leading zeros, as ``Seal.certificate_serial`` keeps it
    serial_hex: Mapped[str] = mapped_column(String(64), primary_key=True)
    reason: Mapped[str] = mapped_column(String(32))
    revoked_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # the order that made it void (None for one imported from the earlier file)
    order_id: Mapped[str | None] = mapped_column(String(36), default=None)


class CertificateRevocationList(Base):
    """A signed CRL; only the latest is kept."""

    __tablename__ = "certificate_revocation_lists"

    # a BigInteger: numbers start above the Unix time, which outgrows 32 bits in 2038
    number: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    this_update: Mapped[datetime] = mapped_column(UtcDateTime)
    # how many revocations it lists: fewer than the table holds means it is out of date
    entries: Mapped[int] = mapped_column(Integer)
    der: Mapped[bytes] = mapped_column(LargeBinary)


def _insert(session: AsyncSession) -> Any:
    # SQLite and PostgreSQL share ON CONFLICT DO NOTHING, which keeps the first revocation
    # when two transactions revoke the same certificate at once.
    dialect = session.get_bind().dialect.name
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def _normalised(serial_hex: str) -> str:
    return format(int(serial_hex, 16), "x")


async def revoke(
    session: AsyncSession,
    services: PlatformServices,
    serial_hex: str | None,
    reason: x509.ReasonFlags,
    *,
    order_id: str | None = None,
) -> bool:
    """Revoke the certificate with this (hex) serial in the caller's transaction.

    Revoked once, with its first reason and date: a second revocation changes nothing (False).
    The next CRL fetched lists it; OCSP answers "revoked" as soon as the transaction commits.
    """
    if not serial_hex:
        return False
    statement = (
        _insert(session)(CertificateRevocation)
        .values(
            serial_hex=_normalised(serial_hex),
            reason=reason.value,
            revoked_at=services.clock.now(),
            order_id=order_id,
        )
        .on_conflict_do_nothing(index_elements=["serial_hex"])
    )
    result = await session.execute(statement)
    return bool(getattr(result, "rowcount", 0))


async def revoke_replaced(
    session: AsyncSession, services: PlatformServices, serial_hex: str | None, order: Order
) -> None:
    """Cancellation ends the certificate; renewal, change and a lost-key reissue replace it."""
    reasons = {
        OrderType.CANCELLATION: RevocationReason.CANCELLED,
        OrderType.RENEWAL: RevocationReason.RENEWED,
        OrderType.CHANGE: RevocationReason.CHANGED,
        OrderType.REISSUE: RevocationReason.KEY_LOST,
    }
    reason = reasons.get(OrderType(order.type))
    if reason is not None:
        await revoke(session, services, serial_hex, reason, order_id=order.id)


def _entry(row: CertificateRevocation) -> RevokedEntry:
    return RevokedEntry(int(row.serial_hex, 16), as_utc(row.revoked_at), x509.ReasonFlags(row.reason))


async def revoked_entry(session: AsyncSession, serial: int) -> RevokedEntry | None:
    row = await session.get(CertificateRevocation, format(serial, "x"))
    return None if row is None else _entry(row)


async def current_crl(services: PlatformServices) -> bytes:
    """The CRL to serve: the stored one while current, else a newly signed one (stored)."""
    now = services.clock.now()
    async with services.db.session() as session:
        legacy = await _import_legacy_file(session, services)
        count = int(await session.scalar(select(func.count()).select_from(CertificateRevocation)) or 0)
        latest = await session.scalar(
            select(CertificateRevocationList).order_by(CertificateRevocationList.number.desc()).limit(1)
        )
        if latest is not None and latest.entries == count and now - as_utc(latest.this_update) < CRL_REFRESH:
            der = latest.der
        else:
            der = await _sign_and_store(session, services, now, latest)
        await session.commit()
    await _retire(legacy)
    return der


async def _sign_and_store(
    session: AsyncSession, services: PlatformServices, now: datetime, latest: CertificateRevocationList | None
) -> bytes:
    rows = (await session.scalars(select(CertificateRevocation))).all()
    entries = sorted((_entry(r) for r in rows), key=lambda e: e.serial)
    number = max(int(now.timestamp()), latest.number + 1 if latest is not None else 0)
    ca = await certificate_authority(services)
    der = await asyncio.to_thread(
        lambda: ca.sign_crl(
            entries, number=number, this_update=now, next_update=now + CRL_VALIDITY
        ).public_bytes(Encoding.DER)
    )
    # two processes signing at once both serve a valid CRL; the first one stored is kept
    await session.execute(
        _insert(session)(CertificateRevocationList)
        .values(number=number, this_update=now, entries=len(entries), der=der)
        .on_conflict_do_nothing(index_elements=["number"])
    )
    await session.execute(delete(CertificateRevocationList).where(CertificateRevocationList.number < number))
    return der


async def ocsp_answer(services: PlatformServices, request_der: bytes) -> bytes:
    """The OCSP response for the first certificate asked about, from the revocation table."""
    now = services.clock.now()
    try:
        serial: int | None = ocsp.load_der_ocsp_request(request_der).serial_number
    except ValueError:
        serial = None  # the CA answers "malformed request"
    known: dict[int, RevokedEntry] = {}
    if serial is not None:
        async with services.db.session() as session:
            legacy = await _import_legacy_file(session, services)
            entry = await revoked_entry(session, serial)
            await session.commit()
        await _retire(legacy)
        if entry is not None:
            known[serial] = entry
    ca = await certificate_authority(services)
    return await asyncio.to_thread(
        ca.ocsp_response, request_der, known.get, this_update=now, next_update=now + OCSP_VALIDITY
    )


async def _import_legacy_file(session: AsyncSession, services: PlatformServices) -> Path | None:
    """Add the revocations kept by the earlier file-based version to the table; the caller
    commits, then ``_retire``s the file (a rollback leaves it for the next request)."""
    path = Path(services.settings.data_dir) / "ca" / _LEGACY_FILE
    if path in _legacy_done:
        return None
    try:
        text = await asyncio.to_thread(path.read_text, "utf-8")
    except FileNotFoundError:
        _legacy_done.add(path)
        return None  # the usual case: nothing left from the earlier version
    raw: dict[str, dict[str, str]] = json.loads(text)
    for serial, item in raw.items():
        await session.execute(
            _insert(session)(CertificateRevocation)
            .values(
                serial_hex=_normalised(serial),
                reason=x509.ReasonFlags(item["reason"]).value,
                revoked_at=datetime.fromisoformat(item["at"]),
                order_id=None,
            )
            .on_conflict_do_nothing(index_elements=["serial_hex"])
        )
    return path


async def _retire(path: Path | None) -> None:
    if path is not None:
        # another request may have retired it meanwhile
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(path.replace, path.with_name(_LEGACY_FILE + ".imported"))
        _legacy_done.add(path)
