"""Payments of orders: the payment records, the provider registry, and applying a paid trade.

A payment is started on an order awaiting payment; the order becomes ``paid`` only when the
provider says so, through a verified notification (``notifications``) or an order query
(``reconcile``). Both go through ``apply_transaction``, which checks the trade against the
payment record and moves order and payment with conditional updates.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import ForeignKey, Integer, String, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from dbkit.types import UtcDateTime
from seal_platform.db import Base
from seal_platform.errors import InvalidInput, NotFound, RuleViolation
from seal_platform.events import publish
from seal_platform.orders import Order, OrderStatus, transition
from seal_platform.payments.base import (
    PayChannel,
    PaymentProvider,
    PaymentRequest,
    ProviderTransaction,
    TradeState,
)
from seal_platform.services import PlatformServices

log = logging.getLogger(__name__)

ORDER_DESCRIPTIONS = {
    "enterprise_seal": "电子印章-企业公章办理",
    "personal_seal": "电子印章-法人个人章办理",
    "bundle": "电子印章-企业公章及法人章办理",
    "renewal": "电子印章-续期",
    "change": "电子印章-变更",
    "reissue": "电子印章-补办",
    "unlock": "电子印章-解锁",
}


class PaymentStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    CLOSED = "closed"
    # Money arrived for an order that had already expired or been cancelled: finance refunds it.
    REFUND_REQUIRED = "refund_required"


class Payment(Base):
    __tablename__ = "payments"

    # Also the out_trade_no sent to the provider (32 hex characters, within WeChat's 6-32) and
    # the capability in the sandbox pay page URL, hence random.
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: uuid.uuid4().hex)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    account_id: Mapped[str] = mapped_column(String(36), index=True)
    provider: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16))
    amount_fen: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), index=True)
    code_url: Mapped[str | None] = mapped_column(String(500), default=None)
    payer_openid: Mapped[str | None] = mapped_column(String(64), default=None)
    transaction_id: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    paid_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)


class ProcessedNotification(Base):
    """Provider notification ids already acted on: a replay is acknowledged and ignored."""

    __tablename__ = "payment_notifications"

    provider: Mapped[str] = mapped_column(String(16), primary_key=True)
    notification_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    out_trade_no: Mapped[str | None] = mapped_column(String(32), default=None)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)


def register_provider(services: PlatformServices, provider: PaymentProvider) -> None:
    services.payment_providers[provider.name] = provider


def get_provider(services: PlatformServices, name: str) -> PaymentProvider:
    provider = services.payment_providers.get(name)
    if provider is None:
        raise NotFound("unknown payment provider", provider=name)
    return provider


async def start_payment(
    session: AsyncSession,
    services: PlatformServices,
    order: Order,
    *,
    channel: PayChannel = PayChannel.NATIVE,
    payer_openid: str | None = None,
    provider_name: str | None = None,
) -> Payment:
    """A payment for an order awaiting payment; the open one is reused if it matches."""
    now = services.clock.now()
    if order.status != OrderStatus.AWAITING_PAYMENT:
        raise RuleViolation(
            "the order is not awaiting payment", code="order_not_payable", status=order.status
        )
    if order.payment_deadline is not None and now >= order.payment_deadline:
        raise RuleViolation(
            "the payment deadline has passed", code="payment_deadline_passed", deadline=order.payment_deadline
        )
    if channel == PayChannel.JSAPI and not payer_openid:
        raise InvalidInput("JSAPI payment needs the payer's openid", code="openid_required")
    provider = get_provider(services, provider_name or services.settings.payment_provider)
    existing = await session.scalar(
        select(Payment).where(
            Payment.order_id == order.id,
            Payment.status == PaymentStatus.PENDING,
            Payment.provider == provider.name,
            Payment.channel == channel.value,
            Payment.amount_fen == order.amount_fen,
        )
    )
    if existing is not None and channel == PayChannel.NATIVE and existing.code_url:
        return existing
    payment = Payment(
        order_id=order.id,
        account_id=order.account_id,
        provider=provider.name,
        channel=channel.value,
        amount_fen=order.amount_fen,
        status=PaymentStatus.PENDING,
        payer_openid=payer_openid,
        created_at=now,
    )
    session.add(payment)
    await session.flush()
    started = await provider.create_payment(
        PaymentRequest(
            out_trade_no=payment.id,
            amount_fen=payment.amount_fen,
            description=ORDER_DESCRIPTIONS.get(order.type, "电子印章"),
            channel=channel,
            payer_openid=payer_openid,
        )
    )
    payment.code_url = started.code_url
    # JSAPI parameters are signed per call and short-lived: returned, not stored.
    session.info.setdefault("jsapi_params", {})[payment.id] = started.jsapi_params
    return payment


def jsapi_params_of(session: AsyncSession, payment: Payment) -> dict[str, str] | None:
    params = session.info.get("jsapi_params", {}).get(payment.id)
    return cast(dict[str, str] | None, params)


async def get_payment(session: AsyncSession, payment_id: str) -> Payment:
    payment = await session.get(Payment, payment_id)
    if payment is None:
        raise NotFound("payment not found", payment_id=payment_id)
    return payment


class TradeMismatch(InvalidInput):
    """A provider's trade does not match our payment record: never moves an order."""

    code = "trade_mismatch"


async def apply_transaction(
    session: AsyncSession,
    services: PlatformServices,
    provider: PaymentProvider,
    trade: ProviderTransaction,
    *,
    actor: str,
) -> Payment:
    """Record a successful trade and move its order to ``paid``, at most once."""
    payment = await session.get(Payment, trade.out_trade_no)
    if payment is None or payment.provider != provider.name:
        raise TradeMismatch("unknown out_trade_no", out_trade_no=trade.out_trade_no)
    if trade.mchid != provider.mchid or trade.appid != provider.appid:
        raise TradeMismatch("trade is for another merchant or app", out_trade_no=trade.out_trade_no)
    if trade.amount_fen != payment.amount_fen:
        raise TradeMismatch(
            "paid amount differs from the order amount",
            out_trade_no=trade.out_trade_no,
            paid=trade.amount_fen,
            expected=payment.amount_fen,
        )
    if trade.trade_state != TradeState.SUCCESS:
        raise TradeMismatch("trade is not successful", trade_state=trade.trade_state.value)
    now = services.clock.now()
    if payment.status in (PaymentStatus.SUCCEEDED, PaymentStatus.REFUND_REQUIRED):
        return payment
    order = await session.get(Order, payment.order_id)
    if order is None:
        raise TradeMismatch("payment without order", out_trade_no=trade.out_trade_no)
    payable = order.status == OrderStatus.AWAITING_PAYMENT
    new_status = PaymentStatus.SUCCEEDED if payable else PaymentStatus.REFUND_REQUIRED
    moved = cast(
        CursorResult[Any],
        await session.execute(
            update(Payment)
            .where(
                Payment.id == payment.id, Payment.status.in_([PaymentStatus.PENDING, PaymentStatus.CLOSED])
            )
            .values(status=new_status, transaction_id=trade.transaction_id, paid_at=trade.success_time or now)
            .execution_options(synchronize_session=False)
        ),
    )
    await session.refresh(payment)
    if moved.rowcount != 1:
        return payment
    if not payable:
        log.warning("payment %s arrived for order %s in status %s", payment.id, order.id, order.status)
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
        return payment
    await transition(
        session,
        order,
        OrderStatus.PAID,
        now=now,
        actor=actor,
        changes={"paid_at": trade.success_time or now},
        event_data={"payment_id": payment.id, "amount_fen": payment.amount_fen},
    )
    # Other pending payments of the same order (another channel) are now pointless.
    await session.execute(
        update(Payment)
        .where(
            Payment.order_id == order.id, Payment.id != payment.id, Payment.status == PaymentStatus.PENDING
        )
        .values(status=PaymentStatus.CLOSED)
        .execution_options(synchronize_session=False)
    )
    return payment


async def close_pending_payments(services: PlatformServices, order_id: str) -> None:
    """Close the order's open payments at their providers, then in our records."""
    async with services.db.session() as session:
        pending = list(
            await session.scalars(
                select(Payment).where(Payment.order_id == order_id, Payment.status == PaymentStatus.PENDING)
            )
        )
    for payment in pending:
        await get_provider(services, payment.provider).close_order(payment.id)
        async with services.db.session() as session:
            await session.execute(
                update(Payment)
                .where(Payment.id == payment.id, Payment.status == PaymentStatus.PENDING)
                .values(status=PaymentStatus.CLOSED)
            )
