"""What an applicant may do with orders, and the rules that decide it.

The bot offers only what makes sense, but every rule is enforced here: the 60-day renewal
window, one open order per seal, documents that belong to the applicant, the SMS code of a
cancellation. ``orders.transition`` then enforces the state machine itself.
"""

# Over 600 lines: the order state machine's rules, each a guarded transition that must be
# read beside the others (what may be cancelled while what is in progress); split per order
# family if it grows.

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from seal_platform import sms
from seal_platform.accounts import Account, RealnameStatus
from seal_platform.companies import Company, get_company, upsert_company
from seal_platform.documents import Document
from seal_platform.errors import Conflict, InvalidInput, RuleViolation
from seal_platform.events import publish
from seal_platform.orders import (
    DOCUMENT_ROLES,
    NEEDS_ADDRESS,
    NEW_SEAL_TYPES,
    OPEN_STATUSES,
    REQUIRED_DOCUMENTS,
    SEAL_TYPES,
    Order,
    OrderStatus,
    OrderType,
    transition,
)
from seal_platform.pricing import NEW_SEAL_KINDS, check_years, order_price_fen
from seal_platform.production.revocation import revoke_replaced
from seal_platform.seals import Seal, SealStatus, get_seal, renewal_opens_at, set_status
from seal_platform.services import PlatformServices
from seal_platform.validation import normalise_mobile, normalise_person_name

# Which document kind may fill which order role.
ROLE_KINDS: dict[str, str] = {
    "business_licence": "business_licence",
    "id_card_front": "id_card_front",
    "id_card_back": "id_card_back",
    "impression_form": "impression_form",
    "impression_form_enterprise": "impression_form",
    "impression_form_personal": "impression_form",
}

# Seal statuses each process may start from.
SEAL_STATUSES_FOR: dict[OrderType, frozenset[SealStatus]] = {
    OrderType.RENEWAL: frozenset({SealStatus.ACTIVE, SealStatus.LOCKED, SealStatus.EXPIRED}),
    OrderType.CHANGE: frozenset({SealStatus.ACTIVE, SealStatus.LOCKED}),
    OrderType.REISSUE: frozenset({SealStatus.ACTIVE, SealStatus.LOCKED, SealStatus.EXPIRED}),
    OrderType.UNLOCK: frozenset({SealStatus.ACTIVE, SealStatus.LOCKED}),
    OrderType.CANCELLATION: frozenset({SealStatus.ACTIVE, SealStatus.LOCKED, SealStatus.EXPIRED}),
}


class CompanyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=2, max_length=200)
    uscc: str = Field(min_length=18, max_length=40)
    legal_rep_name: str = Field(min_length=2, max_length=60)
    legal_rep_id: str = Field(min_length=15, max_length=40)


class MailingAddress(BaseModel):
    model_config = ConfigDict(extra="forbid")

    recipient: str = Field(min_length=2, max_length=60)
    phone: str
    province: str = Field(min_length=2, max_length=30)
    city: str = Field(min_length=2, max_length=30)
    district: str = Field(default="", max_length=30)
    address: str = Field(min_length=4, max_length=200)

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str) -> str:
        return normalise_mobile(value)

    @field_validator("recipient")
    @classmethod
    def _recipient(cls, value: str) -> str:
        return normalise_person_name(value)


class ChangeDetails(BaseModel):
    """The seal's new holder data: a renamed company or a new legal representative."""

    model_config = ConfigDict(extra="forbid")

    company_name: str | None = Field(default=None, min_length=2, max_length=200)
    legal_rep_name: str | None = Field(default=None, min_length=2, max_length=60)


class OrderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: OrderType
    company: CompanyIn | None = None
    company_id: str | None = None
    seal_id: str | None = None
    years: int | None = None
    mailing_address: MailingAddress | None = None
    documents: dict[str, str] = Field(default_factory=dict)
    change: ChangeDetails | None = None


class OrderUpdate(BaseModel):
    """Edits of a draft (or, on resubmission, of a rejected order)."""

    model_config = ConfigDict(extra="forbid")

    company: CompanyIn | None = None
    years: int | None = None
    mailing_address: MailingAddress | None = None
    documents: dict[str, str] | None = None
    change: ChangeDetails | None = None


def request_hash(request: OrderCreate) -> str:
    canonical = json.dumps(request.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def create_order(
    session: AsyncSession,
    services: PlatformServices,
    account: Account,
    request: OrderCreate,
    *,
    idempotency_key: str | None = None,
) -> tuple[Order, bool]:
    """A new draft order; ``(order, False)`` when the idempotency key returns an earlier one."""
    digest = request_hash(request)
    if idempotency_key is not None:
        earlier = await _by_idempotency_key(session, account.id, idempotency_key, digest)
        if earlier is not None:
            return earlier, False
    now = services.clock.now()
    order = Order(
        account_id=account.id,
        type=request.type.value,
        status=OrderStatus.DRAFT.value,
        documents={},
        details={},
        result={},
        idempotency_key=idempotency_key,
        request_hash=digest,
        created_at=now,
        updated_at=now,
    )
    if request.type in NEW_SEAL_TYPES:
        if account.realname_status != RealnameStatus.VERIFIED:
            raise RuleViolation("请先完成实名认证", code="realname_required")
        company = await _company_for(session, services, account, request.company, request.company_id)
        await check_no_second_seal(session, account.id, request.type.value, company, exclude_order_id=None)
        order.company_id = company.id
        order.years = check_years(services.settings, request.years or 0)
    else:
        if request.seal_id is None:
            raise InvalidInput("this order needs a seal", code="seal_required")
        seal = await get_seal(session, account.id, request.seal_id)
        await _check_seal_process(session, services, request.type, seal, exclude_order_id=None)
        order.seal_id = seal.id
        order.company_id = seal.company_id
        if request.type == OrderType.RENEWAL:
            order.years = check_years(services.settings, request.years or 0)
    _apply_edits(
        order,
        mailing_address=request.mailing_address,
        documents=request.documents,
        change=request.change,
    )
    await _check_documents_owned(session, account.id, order.documents)
    await check_names_printable(session, order)
    order.amount_fen = await _price(session, services, order)
    try:
        async with session.begin_nested():
            session.add(order)
    except IntegrityError:
        # Two requests with the same key raced; the other one inserted first.
        if idempotency_key is None:
            raise
        earlier = await _by_idempotency_key(session, account.id, idempotency_key, digest)
        if earlier is None:
            raise
        return earlier, False
    return order, True


async def _by_idempotency_key(session: AsyncSession, account_id: str, key: str, digest: str) -> Order | None:
    earlier = await session.scalar(
        select(Order).where(Order.account_id == account_id, Order.idempotency_key == key)
    )
    if earlier is not None and earlier.request_hash != digest:
        raise Conflict(
            "this Idempotency-Key was used for a different request", code="idempotency_key_reused", key=key
        )
    return earlier


async def _company_for(
    session: AsyncSession,
    services: PlatformServices,
    account: Account,
    company: CompanyIn | None,
    company_id: str | None,
) -> Company:
    if company is not None:
        return await upsert_company(
            session,
            services,
            account_id=account.id,
            name=company.name,
            uscc=company.uscc,
            legal_rep_name=company.legal_rep_name,
            legal_rep_id=company.legal_rep_id,
        )
    if company_id is not None:
        return await get_company(session, account.id, company_id)
    raise InvalidInput("this order needs the company and its legal representative", code="company_required")


# Seal statuses that still count as the company's seal of that kind (an expired one is renewed).
LIVE_SEAL_STATUSES = frozenset(
    {SealStatus.IN_PRODUCTION, SealStatus.ACTIVE, SealStatus.LOCKED, SealStatus.EXPIRED}
)
# New-seal orders on their way to a seal: submitted, not yet produced (from production on the
# seal exists and is checked as a seal; a draft is nobody's commitment yet).
PENDING_NEW_SEAL = frozenset(
    {
        OrderStatus.AWAITING_PAYMENT,
        OrderStatus.PAID,
        OrderStatus.UNDER_REVIEW,
        OrderStatus.REJECTED,
        OrderStatus.RESUBMITTED,
        OrderStatus.APPROVED,
    }
)


async def check_no_second_seal(
    session: AsyncSession, account_id: str, order_type: str, company: Company, *, exclude_order_id: str | None
) -> None:
    """A company has one seal of each kind: refuse a new-seal order when the company (by its
    credit code, under any account) has a live seal of a kind the order makes, or another
    order for it on its way. The details name the seal or order when it is this account's."""
    kinds = set(NEW_SEAL_KINDS.get(order_type, ()))
    seals = await session.scalars(
        select(Seal)
        .join(Company, Company.id == Seal.company_id)
        .where(Company.uscc == company.uscc, Seal.kind.in_(kinds), Seal.status.in_(LIVE_SEAL_STATUSES))
    )
    for seal in seals:
        details: dict[str, Any] = {"kind": seal.kind, "status": seal.status}
        if seal.account_id == account_id:
            details["seal_id"] = seal.id
        raise RuleViolation("this company already has this seal", code="seal_exists", **details)
    others = await session.scalars(
        select(Order)
        .join(Company, Company.id == Order.company_id)
        .where(
            Company.uscc == company.uscc,
            Order.type.in_([t for t, made in NEW_SEAL_KINDS.items() if kinds & set(made)]),
            Order.status.in_(PENDING_NEW_SEAL),
        )
    )
    for other in others:
        if other.id == exclude_order_id:
            continue
        details = {"status": other.status}
        if other.account_id == account_id:
            details["order_id"] = other.id
            details["order_code"] = other.code
        raise RuleViolation(
            "this company has an order for this seal in progress", code="seal_order_open", **details
        )


async def _check_seal_process(
    session: AsyncSession,
    services: PlatformServices,
    order_type: OrderType,
    seal: Seal,
    *,
    exclude_order_id: str | None,
) -> None:
    if order_type not in SEAL_TYPES:
        return
    if seal.status not in SEAL_STATUSES_FOR[order_type]:
        raise RuleViolation(
            "the seal's status does not allow this",
            code="seal_status_not_allowed",
            seal_status=seal.status,
            order_type=order_type.value,
        )
    if order_type == OrderType.RENEWAL:
        opens_at = renewal_opens_at(seal, services.settings.renewal_window_days)
        if opens_at is not None and services.clock.now() < opens_at:
            raise RuleViolation(
                f"印章到期前{services.settings.renewal_window_days}天内才可续期",
                code="renewal_window_closed",
                opens_at=opens_at.isoformat(),
                opens_on=opens_at.date().isoformat(),
                valid_to=seal.valid_to.isoformat() if seal.valid_to else None,
            )
    busy = select(Order.id).where(
        Order.seal_id == seal.id,
        Order.status.in_([s.value for s in OPEN_STATUSES]),
    )
    if order_type == OrderType.UNLOCK:
        # A PIN can lock in the middle of a renewal or change waiting for its UKey step; that
        # step needs the PIN, so the unlock must be possible beside it or neither can finish.
        busy = busy.where(Order.status != OrderStatus.AWAITING_UKEY.value)
    if exclude_order_id is not None:
        busy = busy.where(Order.id != exclude_order_id)
    other = await session.scalar(busy.limit(1))
    if other is not None:
        raise RuleViolation("this seal already has an order in progress", code="seal_busy", order_id=other)


def _apply_edits(
    order: Order,
    *,
    mailing_address: MailingAddress | None,
    documents: dict[str, str] | None,
    change: ChangeDetails | None,
) -> None:
    order_type = OrderType(order.type)
    if mailing_address is not None:
        if order_type not in NEEDS_ADDRESS:
            raise InvalidInput("this order is not mailed", code="address_not_applicable")
        order.mailing_address = mailing_address.model_dump()
    if documents:
        allowed = REQUIRED_DOCUMENTS.get(order_type, frozenset())
        unknown = sorted(set(documents) - allowed)
        if unknown:
            raise InvalidInput(
                "document roles not used by this order",
                code="document_role_invalid",
                roles=unknown,
                allowed=sorted(allowed),
                known=sorted(DOCUMENT_ROLES),
            )
        order.documents = {**order.documents, **documents}
    if change is not None:
        if order_type != OrderType.CHANGE:
            raise InvalidInput("change details on a non-change order", code="change_not_applicable")
        order.details = {**order.details, "change": change.model_dump(exclude_none=True)}


async def _check_documents_owned(session: AsyncSession, account_id: str, documents: dict[str, str]) -> None:
    for role, document_id in documents.items():
        document = await session.get(Document, document_id)
        # Another account's document is reported exactly like a missing one.
        if document is None or document.account_id != account_id:
            raise InvalidInput(
                "document not found", code="document_not_found", role=role, document_id=document_id
            )
        if document.kind != ROLE_KINDS[role]:
            raise InvalidInput(
                "the document is of the wrong kind for this role",
                code="document_kind_mismatch",
                role=role,
                expected=ROLE_KINDS[role],
                actual=document.kind,
            )


async def _price(session: AsyncSession, services: PlatformServices, order: Order) -> int:
    seal_kind = None
    if order.seal_id is not None:
        seal = await session.get(Seal, order.seal_id)
        seal_kind = seal.kind if seal is not None else None
    return order_price_fen(services.settings, order.type, years=order.years, seal_kind=seal_kind)


async def update_order(
    session: AsyncSession, services: PlatformServices, account: Account, order: Order, edits: OrderUpdate
) -> Order:
    if order.status not in (OrderStatus.DRAFT, OrderStatus.REJECTED):
        raise RuleViolation("only a draft or a rejected order can be edited", code="order_not_editable")
    if edits.company is not None:
        if OrderType(order.type) not in NEW_SEAL_TYPES:
            raise InvalidInput("this order's company is the seal's", code="company_not_applicable")
        if order.status != OrderStatus.DRAFT:
            raise RuleViolation("the company cannot change after payment", code="order_not_editable")
        order.company_id = (await _company_for(session, services, account, edits.company, None)).id
    if edits.years is not None:
        if order.status != OrderStatus.DRAFT or order.years is None:
            raise RuleViolation("years can change only on a draft that has them", code="order_not_editable")
        order.years = check_years(services.settings, edits.years)
    _apply_edits(order, mailing_address=edits.mailing_address, documents=edits.documents, change=edits.change)
    await _check_documents_owned(session, account.id, order.documents)
    if order.status == OrderStatus.DRAFT:
        order.amount_fen = await _price(session, services, order)
    order.updated_at = services.clock.now()
    await session.flush()
    return order


def _check_complete(order: Order) -> None:
    order_type = OrderType(order.type)
    missing = sorted(REQUIRED_DOCUMENTS.get(order_type, frozenset()) - set(order.documents))
    if missing:
        raise RuleViolation("documents are missing", code="documents_missing", roles=missing)
    if order_type in NEEDS_ADDRESS and not order.mailing_address:
        raise RuleViolation("a mailing address is needed", code="address_missing")
    if order_type == OrderType.CHANGE and not order.details.get("change"):
        raise RuleViolation("what changes is missing", code="change_details_missing")


async def _one_submission_per_company_at_a_time(session: AsyncSession, uscc: str) -> None:
    """Serialise the one-seal-per-kind check with the submission that follows it, per company.

    Without this, two drafts of one company submitted at once both passed the check (each saw
    no other order on its way) and both went on to payment. The company is the credit code,
    shared by the company rows of every account, so the lock is keyed on it.
    """
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        # held until the transaction ends: the loser's check then sees the winner's order
        await session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": f"company-seal:{uscc}"}
        )
    else:
        # SQLite: a transaction's first write takes the database's write lock, so the check
        # and the submission run with no other writer between them
        await session.execute(
            update(Company)
            .where(Company.uscc == uscc)
            .values(updated_at=Company.updated_at)
            .execution_options(synchronize_session=False)
        )


async def submit_order(
    session: AsyncSession, services: PlatformServices, account: Account, order: Order
) -> Order:
    """Draft -> awaiting_payment, after the checks that payment must not skip."""
    if order.type == OrderType.CANCELLATION:
        raise RuleViolation("a cancellation is confirmed with an SMS code", code="use_cancellation_confirm")
    _check_complete(order)
    if order.type in NEW_SEAL_TYPES and order.company_id is not None:
        # Rechecked: another order of this company may have been paid since the draft.
        company = await get_company(session, account.id, order.company_id)
        await _one_submission_per_company_at_a_time(session, company.uscc)
        await check_no_second_seal(session, account.id, order.type, company, exclude_order_id=order.id)
    if order.seal_id is not None:
        seal = await get_seal(session, account.id, order.seal_id)
        # Rechecked: the window or the seal may have changed since the draft was made.
        await _check_seal_process(session, services, OrderType(order.type), seal, exclude_order_id=order.id)
    await check_names_printable(session, order)
    now = services.clock.now()
    deadline = now + timedelta(minutes=services.settings.order_payment_timeout_minutes)
    return await transition(
        session,
        order,
        OrderStatus.AWAITING_PAYMENT,
        now=now,
        actor=f"account:{account.id}",
        changes={"payment_deadline": deadline, "amount_fen": await _price(session, services, order)},
        event_data={"amount_fen": order.amount_fen, "payment_deadline": deadline.isoformat()},
    )


async def cancel_order(
    session: AsyncSession, services: PlatformServices, account: Account, order: Order
) -> Order:
    """The applicant gives up before paying; an open payment is closed by ``api_orders``."""
    return await transition(
        session, order, OrderStatus.CANCELLED, now=services.clock.now(), actor=f"account:{account.id}"
    )


async def resubmit_order(
    session: AsyncSession, services: PlatformServices, account: Account, order: Order, edits: OrderUpdate
) -> Order:
    """Rejected -> resubmitted -> under_review, with the fixes the reviewer asked for."""
    if order.status != OrderStatus.REJECTED:
        raise RuleViolation(
            "only a rejected order can be resubmitted",
            code="invalid_transition",
            **{"from": order.status, "to": OrderStatus.RESUBMITTED.value},
        )
    await update_order(session, services, account, order, edits)
    _check_complete(order)
    return await transition(
        session,
        order,
        OrderStatus.RESUBMITTED,
        now=services.clock.now(),
        actor=f"account:{account.id}",
        changes={"reject_reason": None},
    )


def check_cancellation_open(order: Order) -> None:
    """Refuse before the code is checked, so a wrong order does not cost an SMS attempt."""
    if order.type != OrderType.CANCELLATION:
        raise RuleViolation("not a cancellation order", code="not_a_cancellation")
    if order.status != OrderStatus.DRAFT:
        raise RuleViolation(
            "this cancellation is not open",
            code="invalid_transition",
            **{"from": order.status, "to": OrderStatus.COMPLETED.value},
        )


async def confirm_cancellation(
    session: AsyncSession, services: PlatformServices, account: Account, order: Order, code_id: int
) -> Order:
    """Cancel the seal of a cancellation order, confirmed by the code sent to the account's phone.

    ``code_id`` is what ``sms.verify_code`` returned (called while no session was held).
    """
    check_cancellation_open(order)
    if order.seal_id is None:
        raise RuleViolation("cancellation without a seal", code="seal_required")
    seal = await get_seal(session, account.id, order.seal_id)
    # before the code is spent: the same code works once the other order is out of the way
    await check_nothing_in_progress(session, seal, exclude_order_id=order.id)
    await sms.consume_code(session, services, code_id)
    now = services.clock.now()
    await set_status(
        session, seal, tuple(SEAL_STATUSES_FOR[OrderType.CANCELLATION]), SealStatus.CANCELLED, now
    )
    order = await transition(
        session,
        order,
        OrderStatus.COMPLETED,
        now=now,
        actor=f"account:{account.id}",
        changes={"result": {**order.result, "seal_cancelled_at": now.isoformat()}},
        event_data={"seal_id": seal.id},
    )
    publish(
        session,
        account.id,
        "seal.cancelled",
        {"seal_id": seal.id, "order_id": order.id, "order_code": order.code},
    )
    await revoke_replaced(session, services, seal.certificate_serial, order)
    return order


def describe(order: Order) -> dict[str, Any]:
    """The order's one-line summary for pay pages and notifications."""
    return {
        "order_id": order.id,
        "order_code": order.code,
        "type": order.type,
        "amount_fen": order.amount_fen,
        "years": order.years,
    }


# -- the UKey step of renewal, change and unlock ---------------------------------------------
#
# The bridge on the applicant's PC does the key work; the platform says what to do, certifies
# the key's public key (renewal, change), hands out the SO PIN (unlock) and records completion.

UKEY_TYPES = frozenset({OrderType.RENEWAL, OrderType.CHANGE, OrderType.UNLOCK})
SO_PIN_CONTEXT = "seal.so_pin"


async def _ukey_order(session: AsyncSession, order: Order) -> Seal:
    if order.type not in UKEY_TYPES or order.status != OrderStatus.AWAITING_UKEY:
        raise RuleViolation("this order has no UKey step waiting", code="no_ukey_job", status=order.status)
    seal = await session.get(Seal, order.seal_id) if order.seal_id else None
    if seal is None or seal.account_id != order.account_id:
        raise RuleViolation("the order's seal is gone", code="seal_missing")
    return seal


def _check_key(seal: Seal, key_serial: str) -> None:
    if seal.key_serial is not None and key_serial != seal.key_serial:
        raise RuleViolation(
            "this is not the seal's key; insert the right UKey", code="wrong_ukey", expected=seal.key_serial
        )


async def ukey_job(session: AsyncSession, services: PlatformServices, order: Order) -> dict[str, Any]:
    """What the bridge must do for this order."""
    seal = await _ukey_order(session, order)
    job: dict[str, Any] = {
        "order_id": order.id,
        "order_type": order.type,
        "seal_id": seal.id,
        "key_serial": seal.key_serial,
        "certificate_issued": "pending_certificate" in order.result,
    }
    if order.type == OrderType.UNLOCK:
        job["reset_pin_to"] = services.settings.unlock_reset_pin
    return job


async def release_so_pin(
    session: AsyncSession, services: PlatformServices, account: Account, order: Order
) -> str:
    """The issuer's SO PIN of the seal's key, for the paid unlock job of this very order."""
    if order.type != OrderType.UNLOCK:
        raise RuleViolation("the SO PIN is only for an unlock", code="not_an_unlock")
    seal = await _ukey_order(session, order)
    if seal.so_pin_encrypted is None:
        raise RuleViolation("no SO PIN is on record for this key", code="so_pin_unknown")
    from seal_platform.staff_actions import record_audit

    now = services.clock.now()
    record_audit(
        session,
        actor=f"account:{account.id}",
        action="release_so_pin",
        object_type="seal",
        object_id=seal.id,
        before=None,
        after={"order_id": order.id},
        at=now,
    )
    order.result = {**order.result, "so_pin_released_at": now.isoformat()}
    return services.field_cipher.decrypt(seal.so_pin_encrypted, context=SO_PIN_CONTEXT)


async def certify_key(
    session: AsyncSession, services: PlatformServices, order: Order, *, key_serial: str, public_key: bytes
) -> dict[str, Any]:
    """Renewal and change: certify the key's public key and make the new SESeal.

    The result is kept as the order's pending certificate; the seal row changes only when the
    bridge reports that the key holds it (``complete_ukey_job``).
    """
    if order.type not in (OrderType.RENEWAL, OrderType.CHANGE):
        raise RuleViolation("only renewal and change write a new certificate", code="no_certificate_step")
    seal = await _ukey_order(session, order)
    _check_key(seal, key_serial)
    from seal_platform.companies import Company, legal_rep_id
    from seal_platform.documents import store_seal_artefacts
    from seal_platform.seals import SealHolder, SealKind, issue_seal

    company = await session.get(Company, seal.company_id)
    if company is None:
        raise RuleViolation("the seal's company is gone", code="company_missing")
    change = order.details.get("change", {}) if order.type == OrderType.CHANGE else {}
    holder = SealHolder(
        kind=SealKind(seal.kind),
        company_name=change.get("company_name") or company.name,
        uscc=company.uscc,
        legal_rep_name=change.get("legal_rep_name") or company.legal_rep_name,
        legal_rep_id=legal_rep_id(services, company),
        seal_code=seal.seal_code,
    )
    issued = await issue_seal(
        services, holder, public_key, 1, valid_to=certificate_end(order, seal, services)
    )
    impression, seseal = await store_seal_artefacts(
        session, services, account_id=order.account_id, seal_code=seal.seal_code, issued=issued
    )
    pending = {
        "certificate_pem": issued.certificate_pem,
        "certificate_serial": issued.certificate_serial,
        "valid_from": issued.valid_from.isoformat(),
        "valid_to": issued.valid_to.isoformat(),
        "impression_document_id": impression.id,
        "seseal_document_id": seseal.id,
        "holder_name": holder.holder_name,
    }
    order.result = {**order.result, "pending_certificate": pending}
    order.updated_at = services.clock.now()
    return pending


async def complete_ukey_job(
    session: AsyncSession, services: PlatformServices, account: Account, order: Order, *, key_serial: str
) -> Order:
    """The bridge reports the key done: apply the new certificate, or record the PIN reset."""
    seal = await _ukey_order(session, order)
    _check_key(seal, key_serial)
    now = services.clock.now()
    result = dict(order.result)
    if order.type == OrderType.UNLOCK:
        result.update(pin_reset_to=services.settings.unlock_reset_pin, pin_reset_at=now.isoformat())
        if seal.status == SealStatus.LOCKED:
            seal.status = SealStatus.ACTIVE.value
    else:
        pending = result.pop("pending_certificate", None)
        if pending is None:
            raise RuleViolation("the new certificate was not issued yet", code="certificate_not_issued")
        replaced_serial = seal.certificate_serial
        seal.certificate_pem = pending["certificate_pem"]
        seal.certificate_serial = pending["certificate_serial"]
        seal.valid_from = datetime.fromisoformat(pending["valid_from"])
        seal.valid_to = datetime.fromisoformat(pending["valid_to"])
        seal.impression_document_id = pending["impression_document_id"]
        seal.seseal_document_id = pending["seseal_document_id"]
        seal.holder_name = pending["holder_name"]
        if seal.status == SealStatus.EXPIRED:
            seal.status = SealStatus.ACTIVE.value
        result.update(certificate_serial=pending["certificate_serial"], valid_to=pending["valid_to"])
        change = order.details.get("change", {})
        if order.type == OrderType.CHANGE and change:
            await _apply_change_to_company(session, seal.company_id, change, now)
        await revoke_replaced(session, services, replaced_serial, order)
    seal.updated_at = now
    return await transition(
        session,
        order,
        OrderStatus.COMPLETED,
        now=now,
        actor=f"account:{account.id}",
        changes={"result": result},
        event_data={
            "seal_id": seal.id,
            **{k: v for k, v in result.items() if k in ("pin_reset_to", "valid_to")},
        },
    )


async def _apply_change_to_company(
    session: AsyncSession, company_id: str, change: dict[str, Any], now: datetime
) -> None:
    company = await session.get(Company, company_id)
    if company is None:
        return
    if change.get("company_name"):
        company.name = change["company_name"]
    if change.get("legal_rep_name"):
        company.legal_rep_name = normalise_person_name(change["legal_rep_name"])
    company.updated_at = now


# -- validity of the new certificate (seal_platform/validity.py) ------------------------------


def certificate_end(order: Order, seal: Seal, services: PlatformServices) -> datetime:
    """Renewal adds the order's years to max(current end, today); change keeps the end date."""
    from seal_platform.validity import kept_valid_to, renewed_valid_to

    now = services.clock.now()
    if order.type == OrderType.RENEWAL:
        return renewed_valid_to(seal.valid_to, now, order.years or 1)
    return kept_valid_to(seal.valid_to, now)


# -- names that fit on the impression (one rule for ordering and production) -----------------


async def check_names_printable(session: AsyncSession, order: Order) -> None:
    """Refuse, before payment, a name production could not put on the impression."""
    from seal_platform.orders import NEW_SEAL_TYPES
    from seal_platform.pricing import NEW_SEAL_KINDS
    from seal_platform.production.impression import ENTERPRISE_NAME_MAX, PERSONAL_NAME_MAX, printable_on_seal

    names: list[tuple[str, int, str]] = []
    company = await session.get(Company, order.company_id) if order.company_id else None
    if OrderType(order.type) in NEW_SEAL_TYPES and company is not None:
        kinds = NEW_SEAL_KINDS[order.type]
        if "enterprise" in kinds:
            names.append((company.name, ENTERPRISE_NAME_MAX, "company_name"))
        if "personal" in kinds:
            names.append((company.legal_rep_name, PERSONAL_NAME_MAX, "legal_rep_name"))
    change = order.details.get("change", {}) if order.type == OrderType.CHANGE else {}
    if change.get("company_name"):
        names.append((str(change["company_name"]), ENTERPRISE_NAME_MAX, "company_name"))
    if change.get("legal_rep_name"):
        names.append((str(change["legal_rep_name"]), PERSONAL_NAME_MAX, "legal_rep_name"))
    for name, limit, field in names:
        if not printable_on_seal(name, limit):
            raise InvalidInput(
                f"印章上的名称应为1到{limit}个字，且不能有空格",
                code="name_not_printable",
                field=field,
                max_length=limit,
            )


# -- cancellation waits for paid orders on the seal --------------------------------------------


async def check_nothing_in_progress(session: AsyncSession, seal: Seal, *, exclude_order_id: str) -> None:
    """A seal is not cancelled under a paid order still being worked on (a reissue in
    production would otherwise ship a key for a cancelled seal); the refusal names the order."""
    other = await session.scalar(
        select(Order)
        .where(
            Order.seal_id == seal.id,
            Order.id != exclude_order_id,
            Order.status.in_([s.value for s in OPEN_STATUSES]),
        )
        .order_by(Order.created_at)
        .limit(1)
    )
    if other is not None:
        raise RuleViolation(
            "this seal has an order in progress: cancel or finish it first",
            code="seal_busy",
            order_id=other.id,
            order_code=other.code,
            order_type=other.type,
            status=other.status,
            amount_fen=other.amount_fen,
            # whether the applicant may withdraw it for a refund and then cancel the seal
            withdrawable=can_withdraw(other),
        )


# -- giving up a paid order for a refund (frees the seal) ---------------------------------------

# Paid orders on a seal that can still be given up, with the payment refunded: nothing has been
# made for them yet (no key written, no certificate issued). A reissue in production or shipped,
# or a completed step, cannot be taken back.
WITHDRAWABLE: dict[OrderType, frozenset[OrderStatus]] = {
    OrderType.REISSUE: frozenset({OrderStatus.PAID}),
    OrderType.CHANGE: frozenset({OrderStatus.UNDER_REVIEW, OrderStatus.REJECTED, OrderStatus.AWAITING_UKEY}),
    OrderType.RENEWAL: frozenset({OrderStatus.AWAITING_UKEY}),
    OrderType.UNLOCK: frozenset({OrderStatus.AWAITING_UKEY}),
}


def can_withdraw(order: Order) -> bool:
    return OrderStatus(order.status) in WITHDRAWABLE.get(OrderType(order.type), frozenset())


async def _cancel_with_refund(
    session: AsyncSession, services: PlatformServices, account: Account, order: Order, marker: str
) -> Order:
    """Cancel a paid order and mark its payments for refund; ``marker`` names why in its result."""
    from seal_platform.payments import Payment, PaymentStatus

    now = services.clock.now()
    paid = list(
        await session.scalars(
            select(Payment).where(Payment.order_id == order.id, Payment.status == PaymentStatus.SUCCEEDED)
        )
    )
    await session.execute(
        update(Payment)
        .where(Payment.order_id == order.id, Payment.status == PaymentStatus.SUCCEEDED)
        .values(status=PaymentStatus.REFUND_REQUIRED)
        .execution_options(synchronize_session=False)
    )
    for payment in paid:
        publish(
            session,
            order.account_id,
            "payment.refund_required",
            {
                "order_id": order.id,
                "order_code": order.code,
                "payment_id": payment.id,
                "amount_fen": payment.amount_fen,
            },
        )
    return await transition(
        session,
        order,
        OrderStatus.CANCELLED,
        now=now,
        actor=f"account:{account.id}",
        changes={"result": {**order.result, marker: now.isoformat(), "refund_required": bool(paid)}},
        event_data={"seal_id": order.seal_id, "refund_required": bool(paid)},
    )


async def abandon_ukey_step(
    session: AsyncSession, services: PlatformServices, account: Account, order: Order
) -> Order:
    """The applicant gives up the UKey step of a paid renewal, change or unlock: the order is
    cancelled, which frees the seal for other orders, and its payment is marked for refund."""
    if order.status != OrderStatus.AWAITING_UKEY:
        raise RuleViolation(
            "only an order waiting for its UKey step can be given up",
            code="invalid_transition",
            **{"from": order.status, "to": OrderStatus.CANCELLED.value},
        )
    return await _cancel_with_refund(session, services, account, order, "ukey_step_abandoned_at")


async def withdraw_paid_order(
    session: AsyncSession, services: PlatformServices, account: Account, order: Order
) -> Order:
    """The applicant withdraws a paid order on a seal before anything is made for it (to cancel
    the seal, say): the order is cancelled and its payment marked for refund."""
    if not can_withdraw(order):
        raise RuleViolation(
            "this order can no longer be withdrawn",
            code="not_withdrawable",
            order_type=order.type,
            status=order.status,
        )
    return await _cancel_with_refund(session, services, account, order, "withdrawn_at")
