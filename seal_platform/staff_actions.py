"""What platform staff do to orders: review, produce, ship, complete; each one audited.

Every function takes the acting ``StaffUser``, checks the role the action needs (the API also
checks it, but these functions are callable from the console and CLI too), moves the order
through ``orders.transition`` and writes an ``AuditEntry`` with the before and after state in
the same transaction.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import JSON, Integer, String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from dbkit.types import UtcDateTime
from seal_platform.companies import Company, legal_rep_id
from seal_platform.db import Base
from seal_platform.documents import store_seal_artefacts
from seal_platform.errors import Forbidden, InvalidInput, RuleViolation
from seal_platform.orders import NEW_SEAL_TYPES, Order, OrderStatus, OrderType, get_order_any, transition
from seal_platform.pricing import NEW_SEAL_KINDS
from seal_platform.production.revocation import revoke_replaced
from seal_platform.production.station import KeyOrder, StationFailed, so_pin_for, token_label
from seal_platform.production.stations import production_station
from seal_platform.seals import (
    IssuedSeal,
    Seal,
    SealHolder,
    SealKind,
    SealStatus,
    allocate_seal_code,
    certificate_authority,
    issue_seal,
)
from seal_platform.services import PlatformServices
from seal_platform.staff import StaffRole, StaffUser
from seal_platform.validation import normalise_sf_waybill
from seal_platform.validity import kept_valid_to
from ukey_bridge.jobs import IssuedCertificate


class AuditEntry(Base):
    """Who did what to which object, and what it looked like before and after."""

    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    actor: Mapped[str] = mapped_column(String(120), index=True)
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(64), index=True)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    at: Mapped[datetime] = mapped_column(UtcDateTime)


AUDITED_ORDER_FIELDS = ("status", "reject_reason", "waybill", "tracking_url", "result")


def order_snapshot(order: Order) -> dict[str, Any]:
    return {name: getattr(order, name) for name in AUDITED_ORDER_FIELDS}


def record_audit(
    session: AsyncSession,
    *,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    at: datetime,
) -> None:
    session.add(
        AuditEntry(
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=object_id,
            before=before,
            after=after,
            at=at,
        )
    )


def _require(staff: StaffUser, role: StaffRole) -> None:
    if not staff.has_role(role):
        raise Forbidden("this action needs another staff role", code="staff_role_required", role=role.value)


async def _audited_transition(
    session: AsyncSession,
    services: PlatformServices,
    staff: StaffUser,
    order: Order,
    to: OrderStatus,
    *,
    action: str,
    reason: str | None = None,
    changes: dict[str, Any] | None = None,
    event_data: dict[str, Any] | None = None,
) -> Order:
    before = order_snapshot(order)
    now = services.clock.now()
    order = await transition(
        session, order, to, now=now, actor=staff.actor, reason=reason, changes=changes, event_data=event_data
    )
    record_audit(
        session,
        actor=staff.actor,
        action=action,
        object_type="order",
        object_id=order.id,
        before=before,
        after=order_snapshot(order),
        at=now,
    )
    return order


async def approve(
    session: AsyncSession, services: PlatformServices, staff: StaffUser, order_id: str
) -> Order:
    _require(staff, StaffRole.REVIEWER)
    order = await get_order_any(session, order_id)
    return await _audited_transition(session, services, staff, order, OrderStatus.APPROVED, action="approve")


async def reject(
    session: AsyncSession, services: PlatformServices, staff: StaffUser, order_id: str, reason: str
) -> Order:
    """Send the order back with a reason the applicant can act on."""
    _require(staff, StaffRole.REVIEWER)
    reason = reason.strip()
    if len(reason) < 4:
        raise InvalidInput("a rejection needs a reason the applicant can act on", code="reason_required")
    order = await get_order_any(session, order_id)
    return await _audited_transition(
        session,
        services,
        staff,
        order,
        OrderStatus.REJECTED,
        action="reject",
        reason=reason,
        changes={"reject_reason": reason},
        event_data={"reason": reason},
    )


async def _store_artefacts(
    session: AsyncSession, services: PlatformServices, seal: Seal, issued: IssuedSeal
) -> None:
    impression, seseal = await store_seal_artefacts(
        session, services, account_id=seal.account_id, seal_code=seal.seal_code, issued=issued
    )
    seal.impression_document_id = impression.id
    seal.seseal_document_id = seseal.id
    seal.certificate_pem = issued.certificate_pem
    seal.certificate_serial = issued.certificate_serial
    seal.valid_from = issued.valid_from
    seal.valid_to = issued.valid_to


@dataclass(frozen=True)
class _WrittenKey:
    issued: IssuedSeal
    key_serial: str
    so_pin_encrypted: str


async def _write_key(
    services: PlatformServices,
    holder: SealHolder,
    job_id: str,
    *,
    years: int,
    valid_to: datetime | None = None,
) -> _WrittenKey:
    """Have the production station make the holder's key on a blank UKey and certify it.

    The certificate is issued for the CSR the token signed; what the station reports back must
    be exactly what was issued (certificate and SESeal), else nothing is recorded.
    """
    issued_for: list[IssuedSeal] = []

    async def certify(csr_der: bytes) -> IssuedCertificate:
        issued = await issue_seal(services, holder, csr_der, years, valid_to=valid_to)
        issued_for.append(issued)
        cert = x509.load_pem_x509_certificate(issued.certificate_pem.encode())
        return IssuedCertificate(
            cert.public_bytes(Encoding.DER),
            issued.seseal_der,
            (await certificate_authority(services)).chain_pem().decode(),
        )

    so_pin = so_pin_for(services, job_id)
    subject = {"common_name": holder.holder_name, "serial_number": holder.seal_code}
    produced = await production_station(services).produce(
        KeyOrder(job_id, token_label(job_id), so_pin, subject), certify
    )
    if not issued_for:
        raise StationFailed(
            "the station reported a key it never had certified", code="station_write_unverified"
        )
    issued = issued_for[-1]
    cert_der = x509.load_pem_x509_certificate(issued.certificate_pem.encode()).public_bytes(Encoding.DER)
    if (
        produced.certificate_sha256 != hashlib.sha256(cert_der).hexdigest()
        or produced.seseal_sha256 != hashlib.sha256(issued.seseal_der).hexdigest()
    ):
        raise StationFailed(
            "the key holds another certificate or seal than the one issued", code="station_write_unverified"
        )
    return _WrittenKey(
        issued, produced.key_serial, services.field_cipher.encrypt(so_pin, context="seal.so_pin")
    )


def _seal_job_id(order: Order, kind: SealKind) -> str:
    # stable across retries of the same seal's production: the station resumes the same key
    return f"produce-{order.id}-{kind.value}"


async def _produce_new_seals(
    session: AsyncSession, services: PlatformServices, order: Order, company: Company
) -> list[str]:
    now = services.clock.now()
    seal_ids: list[str] = []
    for kind_name in NEW_SEAL_KINDS[order.type]:
        kind = SealKind(kind_name)
        code = await allocate_seal_code(session, company.uscc)
        holder = SealHolder(
            kind=kind,
            company_name=company.name,
            uscc=company.uscc,
            legal_rep_name=company.legal_rep_name,
            legal_rep_id=legal_rep_id(services, company),
            seal_code=code,
        )
        written = await _write_key(services, holder, _seal_job_id(order, kind), years=order.years or 1)
        seal = Seal(
            account_id=order.account_id,
            company_id=company.id,
            kind=kind.value,
            status=SealStatus.IN_PRODUCTION.value,
            holder_name=holder.holder_name,
            seal_code=code,
            key_serial=written.key_serial,
            so_pin_encrypted=written.so_pin_encrypted,
            created_by_order_id=order.id,
            created_at=now,
            updated_at=now,
        )
        session.add(seal)
        await session.flush()
        await _store_artefacts(session, services, seal, written.issued)
        seal_ids.append(seal.id)
    return seal_ids


async def _produce_reissue(session: AsyncSession, services: PlatformServices, order: Order) -> dict[str, Any]:
    """A new key for an existing seal: new key pair, certificate and SESeal, same seal code and
    the same end date (a reissue replaces the key, it sells no time)."""
    seal = await session.get(Seal, order.seal_id)
    company = await session.get(Company, order.company_id)
    if seal is None or company is None:
        raise RuleViolation("the order's seal is gone", code="seal_missing")
    if seal.status == SealStatus.CANCELLED:
        raise RuleViolation("a cancelled seal is not produced again", code="seal_cancelled")
    now = services.clock.now()
    valid_to = kept_valid_to(seal.valid_to, now)
    holder = SealHolder(
        kind=SealKind(seal.kind),
        company_name=company.name,
        uscc=company.uscc,
        legal_rep_name=company.legal_rep_name,
        legal_rep_id=legal_rep_id(services, company),
        seal_code=seal.seal_code,
    )
    written = await _write_key(services, holder, f"reissue-{order.id}", years=1, valid_to=valid_to)
    previous = {"key_serial": seal.key_serial, "certificate_serial": seal.certificate_serial}
    seal.key_serial = written.key_serial
    seal.so_pin_encrypted = written.so_pin_encrypted
    await _store_artefacts(session, services, seal, written.issued)
    seal.updated_at = now
    # the lost key's certificate must not sign anything any more
    await revoke_replaced(services, previous["certificate_serial"], order)
    return {"seal_ids": [seal.id], "replaced": previous, "key_serial": seal.key_serial}


async def produce(
    session: AsyncSession, services: PlatformServices, staff: StaffUser, order_id: str
) -> Order:
    """Make the seals of an approved order (or the new key of a paid reissue)."""
    _require(staff, StaffRole.PRODUCER)
    order = await get_order_any(session, order_id)
    order_type = OrderType(order.type)
    expected = OrderStatus.PAID if order_type == OrderType.REISSUE else OrderStatus.APPROVED
    if order_type not in (*NEW_SEAL_TYPES, OrderType.REISSUE) or order.status != expected:
        # Refused before any certificate is issued; the transition would refuse it too.
        from seal_platform.orders import invalid_transition

        raise invalid_transition(order, OrderStatus.IN_PRODUCTION)
    if order_type == OrderType.REISSUE:
        result = await _produce_reissue(session, services, order)
    else:
        company = await session.get(Company, order.company_id)
        if company is None:
            raise RuleViolation("the order's company is gone", code="company_missing")
        result = {"seal_ids": await _produce_new_seals(session, services, order, company)}
    return await _audited_transition(
        session,
        services,
        staff,
        order,
        OrderStatus.IN_PRODUCTION,
        action="produce",
        changes={"result": {**order.result, **result}},
        event_data={"seal_ids": result["seal_ids"]},
    )


def tracking_url(services: PlatformServices, waybill: str) -> str:
    return services.settings.sf_tracking_url_template.format(waybill=waybill)


async def ship(
    session: AsyncSession, services: PlatformServices, staff: StaffUser, order_id: str, waybill: str
) -> Order:
    """Hand the keys to SF Express: the waybill is validated and the tracking link published."""
    _require(staff, StaffRole.SHIPPER)
    waybill = normalise_sf_waybill(waybill)
    order = await get_order_any(session, order_id)
    url = tracking_url(services, waybill)
    order = await _audited_transition(
        session,
        services,
        staff,
        order,
        OrderStatus.SHIPPED,
        action="ship",
        changes={"waybill": waybill, "tracking_url": url},
        event_data={"waybill": waybill, "tracking_url": url},
    )
    # The key with its certificate has left the platform: the new seals are in force.
    now = services.clock.now()
    for seal_id in order.result.get("seal_ids", []):
        seal = await session.get(Seal, seal_id)
        if seal is not None and seal.status == SealStatus.IN_PRODUCTION:
            seal.status = SealStatus.ACTIVE.value
            seal.updated_at = now
    return order


async def complete(
    session: AsyncSession, services: PlatformServices, staff: StaffUser, order_id: str
) -> Order:
    """The shipment was delivered."""
    _require(staff, StaffRole.SHIPPER)
    order = await get_order_any(session, order_id)
    return await _audited_transition(
        session, services, staff, order, OrderStatus.COMPLETED, action="complete"
    )


async def audit_log(
    session: AsyncSession, *, object_id: str | None = None, limit: int = 200
) -> list[AuditEntry]:
    query = select(AuditEntry)
    if object_id is not None:
        query = query.where(AuditEntry.object_id == object_id)
    return list(await session.scalars(query.order_by(AuditEntry.id.desc()).limit(limit)))
