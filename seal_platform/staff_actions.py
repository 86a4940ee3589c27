"""What platform staff do to orders: review, produce, ship, complete; each one audited.

Every function takes the acting ``StaffUser``, checks the role the action needs (the API also
checks it, but these functions are callable from the console and CLI too), moves the order
through ``orders.transition`` and writes an ``AuditEntry`` with the before and after state in
the same transaction.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import JSON, Integer, String, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from dbkit.types import UtcDateTime
from seal_platform.companies import Company, legal_rep_id
from seal_platform.db import Base
from seal_platform.documents import store_seal_artefacts
from seal_platform.errors import Forbidden, InvalidInput, PlatformError, RuleViolation
from seal_platform.orders import (
    NEW_SEAL_TYPES,
    RUN_CLAIM,
    Order,
    OrderStatus,
    OrderType,
    get_order_any,
    transition,
)
from seal_platform.pricing import NEW_SEAL_KINDS
from seal_platform.production.progress import StepSink, no_progress, production_progress
from seal_platform.production.revocation import revoke_replaced
from seal_platform.production.station import KeyOrder, StationFailed, so_pin_for, token_label
from seal_platform.production.station_hub import JOB_TIMEOUT_SECONDS, StationHub
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

_log = logging.getLogger(__name__)


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
    staff: str | None = None,
    progress: StepSink = no_progress,
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
        KeyOrder(job_id, token_label(job_id), so_pin, subject, staff=staff), certify, progress
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


@dataclass(frozen=True)
class _SealPlan:
    """One key a production run makes: for whom, under which stable job id, for how long."""

    holder: SealHolder
    job_id: str
    years: int
    valid_to: datetime | None = None


@dataclass(frozen=True)
class ProductionPlan:
    """What a production run needs from the database, read in one short transaction so that
    the wait for the station (minutes, at worst) holds no database connection."""

    order_id: str
    order_type: OrderType
    expected: OrderStatus
    seals: tuple[_SealPlan, ...]


async def plan_production(
    session: AsyncSession, services: PlatformServices, staff: StaffUser, order_id: str
) -> ProductionPlan:
    """Refuse what may not be produced, before any certificate is issued, and say what to make."""
    _require(staff, StaffRole.PRODUCER)
    order = await get_order_any(session, order_id)
    order_type = OrderType(order.type)
    expected = OrderStatus.PAID if order_type == OrderType.REISSUE else OrderStatus.APPROVED
    if order_type not in (*NEW_SEAL_TYPES, OrderType.REISSUE) or order.status != expected:
        # Refused before any certificate is issued; the transition would refuse it too.
        from seal_platform.orders import invalid_transition

        raise invalid_transition(order, OrderStatus.IN_PRODUCTION)
    company = await session.get(Company, order.company_id)
    if company is None:
        raise RuleViolation("the order's company is gone", code="company_missing")
    plans: tuple[_SealPlan, ...]
    if order_type == OrderType.REISSUE:
        seal = await session.get(Seal, order.seal_id)
        if seal is None:
            raise RuleViolation("the order's seal is gone", code="seal_missing")
        _refuse_cancelled(seal)
        holder = _holder(services, company, SealKind(seal.kind), seal.seal_code)
        # a reissue replaces the key, it sells no time: the same end date
        valid_to = kept_valid_to(seal.valid_to, services.clock.now())
        plans = (_SealPlan(holder, f"reissue-{order.id}", 1, valid_to),)
    else:
        codes: list[str] = []
        for _kind in NEW_SEAL_KINDS[order.type]:
            # not in the database until recorded: the order's own seals must not share a code
            code = await allocate_seal_code(session, company.uscc)
            while code in codes:
                code = await allocate_seal_code(session, company.uscc)
            codes.append(code)
        plans = tuple(
            _SealPlan(
                _holder(services, company, SealKind(kind), code),
                _seal_job_id(order, SealKind(kind)),
                order.years or 1,
            )
            for kind, code in zip(NEW_SEAL_KINDS[order.type], codes, strict=True)
        )
    return ProductionPlan(order.id, order_type, expected, plans)


def _holder(services: PlatformServices, company: Company, kind: SealKind, code: str) -> SealHolder:
    return SealHolder(
        kind=kind,
        company_name=company.name,
        uscc=company.uscc,
        legal_rep_name=company.legal_rep_name,
        legal_rep_id=legal_rep_id(services, company),
        seal_code=code,
    )


def _refuse_cancelled(seal: Seal) -> None:
    if seal.status == SealStatus.CANCELLED:
        raise RuleViolation("a cancelled seal is not produced again", code="seal_cancelled")


async def _record_new_seals(
    session: AsyncSession,
    services: PlatformServices,
    order: Order,
    plan: ProductionPlan,
    written: list[_WrittenKey],
) -> dict[str, Any]:
    now = services.clock.now()
    seal_ids: list[str] = []
    for seal_plan, key in zip(plan.seals, written, strict=True):
        seal = Seal(
            account_id=order.account_id,
            company_id=order.company_id,
            kind=seal_plan.holder.kind.value,
            status=SealStatus.IN_PRODUCTION.value,
            holder_name=seal_plan.holder.holder_name,
            seal_code=seal_plan.holder.seal_code,
            key_serial=key.key_serial,
            so_pin_encrypted=key.so_pin_encrypted,
            created_by_order_id=order.id,
            created_at=now,
            updated_at=now,
        )
        session.add(seal)
        await session.flush()
        await _store_artefacts(session, services, seal, key.issued)
        seal_ids.append(seal.id)
    return {"seal_ids": seal_ids}


async def _record_reissue(
    session: AsyncSession, services: PlatformServices, order: Order, written: _WrittenKey
) -> dict[str, Any]:
    """The new key of an existing seal: same seal code, same end date, the lost key revoked."""
    seal = await session.get(Seal, order.seal_id)
    if seal is None:
        raise RuleViolation("the order's seal is gone", code="seal_missing")
    # cancelled while the station was writing: the new key is not recorded
    _refuse_cancelled(seal)
    previous = {"key_serial": seal.key_serial, "certificate_serial": seal.certificate_serial}
    seal.key_serial = written.key_serial
    seal.so_pin_encrypted = written.so_pin_encrypted
    await _store_artefacts(session, services, seal, written.issued)
    seal.updated_at = services.clock.now()
    # the lost key's certificate must not sign anything any more
    await revoke_replaced(session, services, previous["certificate_serial"], order)
    return {"seal_ids": [seal.id], "replaced": previous, "key_serial": seal.key_serial}


async def _record_production(
    session: AsyncSession,
    services: PlatformServices,
    staff: StaffUser,
    plan: ProductionPlan,
    written: list[_WrittenKey],
) -> Order:
    """The outcome, in its own short transaction: the order is checked again (it may have been
    cancelled or produced meanwhile) before anything is recorded."""
    order = await get_order_any(session, plan.order_id)
    if order.status != plan.expected:
        from seal_platform.orders import invalid_transition

        raise invalid_transition(order, OrderStatus.IN_PRODUCTION)
    if plan.order_type == OrderType.REISSUE:
        result = await _record_reissue(session, services, order, written[0])
    else:
        result = await _record_new_seals(session, services, order, plan, written)
    return await _audited_transition(
        session,
        services,
        staff,
        order,
        OrderStatus.IN_PRODUCTION,
        action="produce",
        # the run's claim ends with the run
        changes={"result": {**{k: v for k, v in order.result.items() if k != RUN_CLAIM}, **result}},
        event_data={"seal_ids": result["seal_ids"]},
    )


class ProductionRunning(RuleViolation):
    """A production run of this order is already going on (a second click, a second tab, another
    platform process)."""


# Longer than a station may take for one key (``JOB_TIMEOUT_SECONDS``), with a margin.
RUN_CLAIM_SECONDS_PER_KEY = int(JOB_TIMEOUT_SECONDS) + 60


def _claim_stamp(moment: datetime) -> str:
    # fixed width, so that the database compares the stamps as strings
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def _claim_run(services: PlatformServices, plan: ProductionPlan, staff: str) -> tuple[str, StepSink]:
    """Take the order's production claim with one conditional update: of two clicks at once (in
    any process) exactly one finds the order unclaimed, or its claim expired; then start the
    run on this process's progress board."""
    now = services.clock.now()
    token = uuid.uuid4().hex
    until = now + timedelta(seconds=RUN_CLAIM_SECONDS_PER_KEY * len(plan.seals))
    async with services.db.session() as session:
        order = await get_order_any(session, plan.order_id)
        claimed = await session.execute(
            update(Order)
            .where(
                Order.id == order.id,
                Order.status == plan.expected.value,
                or_(
                    Order.result[(RUN_CLAIM, "until")].as_string().is_(None),
                    Order.result[(RUN_CLAIM, "until")].as_string() < _claim_stamp(now),
                ),
            )
            .values(result={**order.result, RUN_CLAIM: {"until": _claim_stamp(until), "run": token}})
            .returning(Order.id)
            .execution_options(synchronize_session=False)
        )
        if claimed.scalar_one_or_none() is None:
            await session.refresh(order)
            if order.status != plan.expected:
                from seal_platform.orders import invalid_transition

                raise invalid_transition(order, OrderStatus.IN_PRODUCTION)
            raise ProductionRunning(
                "this order is already being produced", code="production_running", order_id=order.id
            )
    return token, production_progress(services).begin(plan.order_id, staff)


async def _release_run(services: PlatformServices, order_id: str, token: str) -> None:
    """Give a failed run's claim back (if it is still this run's), so that it can be retried."""
    async with services.db.session() as session:
        order = await get_order_any(session, order_id)
        if order.result.get(RUN_CLAIM, {}).get("run") != token:
            return
        await session.execute(
            update(Order)
            .where(Order.id == order_id, Order.result[(RUN_CLAIM, "run")].as_string() == token)
            .values(result={k: v for k, v in order.result.items() if k != RUN_CLAIM})
            .execution_options(synchronize_session=False)
        )


async def _run_production(
    services: PlatformServices, staff: StaffUser, plan: ProductionPlan, claim: tuple[str, StepSink]
) -> Order:
    """Write the keys (no connection held while the station works), then record the outcome;
    a run that records nothing gives its claim back."""
    board = production_progress(services)
    token, progress = claim
    try:
        written = [
            await _write_key(
                services,
                seal.holder,
                seal.job_id,
                years=seal.years,
                valid_to=seal.valid_to,
                staff=staff.username,
                progress=progress,
            )
            for seal in plan.seals
        ]
        async with services.db.session() as session:
            order = await _record_production(session, services, staff, plan, written)
    except BaseException as exc:
        board.end(plan.order_id, error=exc.code if isinstance(exc, PlatformError) else "station_failed")
        await asyncio.shield(_release_run(services, plan.order_id, token))
        raise
    board.end(plan.order_id)
    return order


async def produce(services: PlatformServices, staff: StaffUser, order_id: str) -> Order:
    """Make the seals of an approved order (or the new key of a paid reissue) and wait for it."""
    async with services.db.session() as session:
        plan = await plan_production(session, services, staff, order_id)
    claim = await _claim_run(services, plan, staff.username)
    return await _run_production(services, staff, plan, claim)


async def start_production(services: PlatformServices, staff: StaffUser, order_id: str) -> None:
    """Like ``produce``, but returns once the run has started: the run goes on as a task of its
    own (the console polls its progress) and its outcome is on the progress board."""
    async with services.db.session() as session:
        plan = await plan_production(session, services, staff, order_id)
    station = production_station(services)
    if isinstance(station, StationHub):
        # said at once rather than as the first poll's error
        station.require_online(staff.username)
    claim = await _claim_run(services, plan, staff.username)

    async def run() -> None:
        try:
            await _run_production(services, staff, plan, claim)
        except PlatformError as exc:
            _log.info("production of order %s refused: %s", plan.order_id, exc.code)
        except Exception:
            _log.exception("production of order %s failed", plan.order_id)

    services.db.follow_up(run())


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
