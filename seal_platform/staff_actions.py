"""What platform staff do to orders: review, produce, ship, complete; each one audited.

Every function takes the acting ``StaffUser``, checks the role the action needs (the API also
checks it, but these functions are callable from the console and CLI too), moves the order
through ``orders.transition`` and writes an ``AuditEntry`` with the before and after state in
the same transaction.
"""

from __future__ import annotations

import math
import secrets
from datetime import datetime, timedelta
from typing import Any

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
from seal_platform.seals import (
    IssuedSeal,
    Seal,
    SealHolder,
    SealKind,
    SealStatus,
    allocate_seal_code,
    as_utc,
    issue_seal,
    new_key_pair,
)
from seal_platform.services import PlatformServices
from seal_platform.staff import StaffRole, StaffUser
from seal_platform.validation import normalise_sf_waybill


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


def _key_serial() -> str:
    return "UK" + secrets.token_hex(8).upper()


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


def _so_pin_ciphertext(services: PlatformServices) -> str:

    so_pin = "".join(secrets.choice("0123456789") for _ in range(10))
    return services.field_cipher.encrypt(so_pin, context="seal.so_pin")


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
        public_key, _private_key = new_key_pair()
        issued = await issue_seal(services, holder, public_key, order.years or 1)
        seal = Seal(
            account_id=order.account_id,
            company_id=company.id,
            kind=kind.value,
            status=SealStatus.IN_PRODUCTION.value,
            holder_name=holder.holder_name,
            seal_code=code,
            key_serial=_key_serial(),
            so_pin_encrypted=_so_pin_ciphertext(services),
            created_by_order_id=order.id,
            created_at=now,
            updated_at=now,
        )
        session.add(seal)
        await session.flush()
        await _store_artefacts(session, services, seal, issued)
        seal_ids.append(seal.id)
    return seal_ids


async def _produce_reissue(session: AsyncSession, services: PlatformServices, order: Order) -> dict[str, Any]:
    """A new key for an existing seal: new key pair, certificate and SESeal, same seal code."""
    seal = await session.get(Seal, order.seal_id)
    company = await session.get(Company, order.company_id)
    if seal is None or company is None:
        raise RuleViolation("the order's seal is gone", code="seal_missing")
    now = services.clock.now()
    remaining = (as_utc(seal.valid_to) - now) if seal.valid_to else timedelta(0)
    # The certificate's validity is whole years: the remaining term, rounded up, at least one.
    years = max(1, math.ceil(remaining / timedelta(days=365)))
    holder = SealHolder(
        kind=SealKind(seal.kind),
        company_name=company.name,
        uscc=company.uscc,
        legal_rep_name=company.legal_rep_name,
        legal_rep_id=legal_rep_id(services, company),
        seal_code=seal.seal_code,
    )
    public_key, _private_key = new_key_pair()
    issued = await issue_seal(services, holder, public_key, years)
    previous = {"key_serial": seal.key_serial, "certificate_serial": seal.certificate_serial}
    seal.key_serial = _key_serial()
    seal.so_pin_encrypted = _so_pin_ciphertext(services)
    await _store_artefacts(session, services, seal, issued)
    seal.updated_at = now
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
