"""Orders for every process of the manual, and their explicit state machine.

One table of allowed (from, to) pairs per order type is the whole state machine; ``transition``
is the only code that changes ``Order.status``. It is a conditional UPDATE (``WHERE status =
expected``), so of two concurrent transitions from the same state exactly one wins, and the
loser gets the same ``invalid_transition`` refusal as a forbidden move. Every transition is
recorded in ``OrderTransition`` and published to the bot as ``order.<new status>``; the main ones
are also e-mailed to an account that opted in (``notices``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from dbkit.types import UtcDateTime
from seal_platform.db import Base
from seal_platform.errors import NotFound, RuleViolation
from seal_platform.events import publish
from seal_platform.field_crypto import EncryptedJSON
from seal_platform.notices import queue_order_notice


class OrderType(StrEnum):
    ENTERPRISE_SEAL = "enterprise_seal"
    PERSONAL_SEAL = "personal_seal"
    # Both seals of a company as one order (the manual: an applicant needs both).
    BUNDLE = "bundle"
    RENEWAL = "renewal"
    CHANGE = "change"
    REISSUE = "reissue"
    UNLOCK = "unlock"
    CANCELLATION = "cancellation"


class OrderStatus(StrEnum):
    DRAFT = "draft"
    AWAITING_PAYMENT = "awaiting_payment"
    PAID = "paid"
    UNDER_REVIEW = "under_review"
    REJECTED = "rejected"
    RESUBMITTED = "resubmitted"
    APPROVED = "approved"
    IN_PRODUCTION = "in_production"
    SHIPPED = "shipped"
    AWAITING_UKEY = "awaiting_ukey"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


S = OrderStatus
NEW_SEAL_TYPES = frozenset({OrderType.ENTERPRISE_SEAL, OrderType.PERSONAL_SEAL, OrderType.BUNDLE})
SEAL_TYPES = frozenset(
    {OrderType.RENEWAL, OrderType.CHANGE, OrderType.REISSUE, OrderType.UNLOCK, OrderType.CANCELLATION}
)

_PAYMENT = frozenset(
    {
        (S.DRAFT, S.AWAITING_PAYMENT),
        (S.DRAFT, S.CANCELLED),
        (S.AWAITING_PAYMENT, S.PAID),
        (S.AWAITING_PAYMENT, S.CANCELLED),
        (S.AWAITING_PAYMENT, S.EXPIRED),
    }
)
_REVIEW = frozenset(
    {
        (S.PAID, S.UNDER_REVIEW),
        (S.UNDER_REVIEW, S.REJECTED),
        (S.REJECTED, S.RESUBMITTED),
        (S.RESUBMITTED, S.UNDER_REVIEW),
        (S.UNDER_REVIEW, S.APPROVED),
    }
)
_DELIVERY = frozenset({(S.IN_PRODUCTION, S.SHIPPED), (S.SHIPPED, S.COMPLETED)})
# Given up at the UKey step (the PC never came back): the order ends, the payment is refunded.
_UKEY = frozenset({(S.AWAITING_UKEY, S.COMPLETED), (S.AWAITING_UKEY, S.CANCELLED)})

TRANSITIONS: dict[OrderType, frozenset[tuple[OrderStatus, OrderStatus]]] = {
    OrderType.ENTERPRISE_SEAL: _PAYMENT | _REVIEW | {(S.APPROVED, S.IN_PRODUCTION)} | _DELIVERY,
    OrderType.PERSONAL_SEAL: _PAYMENT | _REVIEW | {(S.APPROVED, S.IN_PRODUCTION)} | _DELIVERY,
    OrderType.BUNDLE: _PAYMENT | _REVIEW | {(S.APPROVED, S.IN_PRODUCTION)} | _DELIVERY,
    OrderType.RENEWAL: _PAYMENT | {(S.PAID, S.AWAITING_UKEY)} | _UKEY,
    OrderType.UNLOCK: _PAYMENT | {(S.PAID, S.AWAITING_UKEY)} | _UKEY,
    # A paid change or reissue may be withdrawn with a refund until anything is made for it
    # (``order_rules.WITHDRAWABLE``), e.g. so that the seal can be cancelled.
    OrderType.CHANGE: _PAYMENT
    | _REVIEW
    | {(S.APPROVED, S.AWAITING_UKEY), (S.UNDER_REVIEW, S.CANCELLED), (S.REJECTED, S.CANCELLED)}
    | _UKEY,
    OrderType.REISSUE: _PAYMENT | {(S.PAID, S.IN_PRODUCTION), (S.PAID, S.CANCELLED)} | _DELIVERY,
    # No payment: confirmed by a fresh SMS code, then done.
    OrderType.CANCELLATION: frozenset({(S.DRAFT, S.COMPLETED), (S.DRAFT, S.CANCELLED)}),
}

# Where an order goes on its own right after a transition into the key status: nobody has to
# act in between, but the intermediate status is still recorded and published.
AUTOMATIC_NEXT: dict[tuple[OrderType, OrderStatus], OrderStatus] = {
    **{(t, S.PAID): S.UNDER_REVIEW for t in (*NEW_SEAL_TYPES, OrderType.CHANGE)},
    **{(t, S.RESUBMITTED): S.UNDER_REVIEW for t in (*NEW_SEAL_TYPES, OrderType.CHANGE)},
    (OrderType.RENEWAL, S.PAID): S.AWAITING_UKEY,
    (OrderType.UNLOCK, S.PAID): S.AWAITING_UKEY,
    # An approved change needs nothing more from staff: the applicant's UKey step is next.
    (OrderType.CHANGE, S.APPROVED): S.AWAITING_UKEY,
}

# Document roles an order needs before it can be submitted for payment (or resubmitted).
REQUIRED_DOCUMENTS: dict[OrderType, frozenset[str]] = {
    OrderType.ENTERPRISE_SEAL: frozenset({"business_licence", "impression_form_enterprise"}),
    OrderType.PERSONAL_SEAL: frozenset({"id_card_front", "id_card_back", "impression_form_personal"}),
    OrderType.BUNDLE: frozenset(
        {
            "business_licence",
            "impression_form_enterprise",
            "id_card_front",
            "id_card_back",
            "impression_form_personal",
        }
    ),
    OrderType.CHANGE: frozenset({"business_licence", "impression_form"}),
}
DOCUMENT_ROLES = frozenset().union(*REQUIRED_DOCUMENTS.values())

# Orders that go in the post need a mailing address.
NEEDS_ADDRESS = frozenset({*NEW_SEAL_TYPES, OrderType.REISSUE})
OPEN_STATUSES = frozenset(set(OrderStatus) - {S.COMPLETED, S.CANCELLED, S.EXPIRED, S.DRAFT})


# The claim of a running production, kept in ``orders.result`` so that every platform process
# sees it: {"until": when a crashed run's claim may be taken over, "run": this run's token}.
RUN_CLAIM = "production_run"
# What ``orders.result`` holds for the platform's own bookkeeping: never shown to the customer.
PRIVATE_RESULT_KEYS = frozenset({RUN_CLAIM})


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (UniqueConstraint("account_id", "idempotency_key"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    type: Mapped[str] = mapped_column(String(24))
    status: Mapped[str] = mapped_column(String(24), index=True)
    company_id: Mapped[str | None] = mapped_column(ForeignKey("companies.id"), default=None)
    seal_id: Mapped[str | None] = mapped_column(ForeignKey("seals.id"), default=None, index=True)
    years: Mapped[int | None] = mapped_column(Integer, default=None)
    amount_fen: Mapped[int] = mapped_column(Integer, default=0)
    # Recipient name, phone and address: personal data, encrypted at rest (field_crypto).
    mailing_address: Mapped[dict[str, Any] | None] = mapped_column(
        EncryptedJSON("orders.mailing_address"), default=None
    )
    # role -> document id, e.g. {"business_licence": "...", "impression_form_enterprise": "..."}
    documents: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    # Type-specific request data, e.g. the new company details of a change.
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # What fulfilling the order produced: seal ids, certificate serials, "pin_reset_to", ...
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    reject_reason: Mapped[str | None] = mapped_column(Text, default=None)
    waybill: Mapped[str | None] = mapped_column(String(20), default=None)
    tracking_url: Mapped[str | None] = mapped_column(String(300), default=None)
    payment_deadline: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    paid_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), default=None)
    request_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)

    @property
    def code(self) -> str:
        """The order number people see (``order_code``), carried in every order answer."""
        return order_code(self.id)


class OrderTransition(Base):
    """The history of an order: every status change, who made it and why."""

    __tablename__ = "order_transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    from_status: Mapped[str] = mapped_column(String(24))
    to_status: Mapped[str] = mapped_column(String(24))
    # "account:<id>", "staff:<username>", "provider:<name>", "system"
    actor: Mapped[str] = mapped_column(String(120))
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    at: Mapped[datetime] = mapped_column(UtcDateTime)


def order_code(order_id: str) -> str:
    """The order number people see and say (chat, pay page, forms, invoice, console): the first
    eight characters of the id, upper case; the full id stays internal. Order answers and events
    carry it (``code``, ``order_code``), so the bot shows it without knowing this rule."""
    return order_id[:8].upper()


def is_allowed(order_type: OrderType | str, from_status: OrderStatus | str, to: OrderStatus | str) -> bool:
    return (OrderStatus(from_status), OrderStatus(to)) in TRANSITIONS[OrderType(order_type)]


def invalid_transition(order: Order, to: OrderStatus) -> RuleViolation:
    return RuleViolation(
        f"an order of type {order.type} cannot go from {order.status} to {to.value}",
        code="invalid_transition",
        order_id=order.id,
        **{"from": order.status, "to": to.value},
    )


async def transition(
    session: AsyncSession,
    order: Order,
    to: OrderStatus,
    *,
    now: datetime,
    actor: str,
    reason: str | None = None,
    changes: dict[str, Any] | None = None,
    event_data: dict[str, Any] | None = None,
    follow_automatic: bool = True,
) -> Order:
    """Move ``order`` to ``to`` if the table allows it and nobody moved it first."""
    from_status = OrderStatus(order.status)
    if not is_allowed(order.type, from_status, to):
        raise invalid_transition(order, to)
    values: dict[str, Any] = {"status": to.value, "updated_at": now, **(changes or {})}
    result = cast(
        CursorResult[Any],
        await session.execute(
            update(Order)
            .where(Order.id == order.id, Order.status == from_status.value)
            .values(**values)
            .execution_options(synchronize_session=False)
        ),
    )
    if result.rowcount != 1:
        # Somebody else moved it between our read and this write: report the state they left.
        await session.refresh(order)
        raise invalid_transition(order, to)
    await session.refresh(order)
    session.add(
        OrderTransition(
            order_id=order.id,
            from_status=from_status.value,
            to_status=to.value,
            actor=actor,
            reason=reason,
            at=now,
        )
    )
    publish(
        session,
        order.account_id,
        f"order.{to.value}",
        {
            "order_id": order.id,
            "order_code": order.code,
            "order_type": order.type,
            "from": from_status.value,
            "to": to.value,
            **(event_data or {}),
        },
    )
    await queue_order_notice(
        session,
        account_id=order.account_id,
        status=to.value,
        order_code=order_code(order.id),
        order_type=order.type,
        amount_fen=order.amount_fen,
        data={"reason": reason, **(event_data or {})},
        now=now,
    )
    following = AUTOMATIC_NEXT.get((OrderType(order.type), to))
    if follow_automatic and following is not None:
        return await transition(session, order, following, now=now, actor="system")
    return order


async def get_order(session: AsyncSession, account_id: str, order_id: str) -> Order:
    """The account's order; another account's order is indistinguishable from a missing one."""
    order = await session.get(Order, order_id)
    if order is None or order.account_id != account_id:
        raise NotFound("order not found", order_id=order_id)
    return order


async def get_order_any(session: AsyncSession, order_id: str) -> Order:
    """For staff and providers, who are not scoped to an account."""
    order = await session.get(Order, order_id)
    if order is None:
        raise NotFound("order not found", order_id=order_id)
    return order


async def list_orders(
    session: AsyncSession, account_id: str, *, status: str | None = None, limit: int = 100
) -> list[Order]:
    query = select(Order).where(Order.account_id == account_id)
    if status is not None:
        query = query.where(Order.status == status)
    rows = await session.scalars(query.order_by(Order.created_at.desc()).limit(limit))
    return list(rows)


async def history(session: AsyncSession, order_id: str) -> list[OrderTransition]:
    rows = await session.scalars(
        select(OrderTransition).where(OrderTransition.order_id == order_id).order_by(OrderTransition.id)
    )
    return list(rows)
