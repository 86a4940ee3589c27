"""Reconciliation: orders past their payment deadline are asked about, then paid or expired.

A notification can be lost (network, outage): before expiring an order we query each of its
payments at the provider. A trade the provider reports as paid is applied exactly as a
notification would be; otherwise the trade is closed at the provider (so it cannot be paid
later) and the order expires. The scheduler calls ``reconcile_unpaid`` every minute or so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import select

from seal_platform.errors import PlatformError
from seal_platform.orders import Order, OrderStatus, transition
from seal_platform.payments import Payment, PaymentStatus, apply_transaction, get_provider
from seal_platform.payments.base import TradeState
from seal_platform.services import PlatformServices

log = logging.getLogger(__name__)


@dataclass
class ReconcileReport:
    paid: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


async def reconcile_unpaid(services: PlatformServices, *, limit: int = 200) -> ReconcileReport:
    report = ReconcileReport()
    now = services.clock.now()
    async with services.db.session() as session:
        stale = list(
            await session.scalars(
                select(Order.id)
                .where(Order.status == OrderStatus.AWAITING_PAYMENT, Order.payment_deadline <= now)
                .order_by(Order.payment_deadline)
                .limit(limit)
            )
        )
    for order_id in stale:
        try:
            outcome = await _reconcile_order(services, order_id)
        except PlatformError as exc:
            # One provider hiccup must not stop the rest; the next run retries this order.
            log.warning("reconciling order %s failed: %s", order_id, exc.code)
            report.failed.append(order_id)
            continue
        if outcome == "paid":
            report.paid.append(order_id)
        elif outcome == "expired":
            report.expired.append(order_id)
    return report


async def _reconcile_order(services: PlatformServices, order_id: str) -> str:
    async with services.db.session() as session:
        payments = list(
            await session.scalars(
                select(Payment).where(Payment.order_id == order_id, Payment.status == PaymentStatus.PENDING)
            )
        )
    # Provider calls happen outside any transaction: they may be slow.
    for payment in payments:
        provider = get_provider(services, payment.provider)
        trade = await provider.query_order(payment.id)
        if trade is not None and trade.trade_state == TradeState.SUCCESS:
            async with services.db.session() as session:
                await apply_transaction(
                    session, services, provider, trade, actor=f"provider:{provider.name}:query"
                )
            return "paid"
    for payment in payments:
        await get_provider(services, payment.provider).close_order(payment.id)
    async with services.db.session() as session:
        order = await session.get(Order, order_id)
        if order is None or order.status != OrderStatus.AWAITING_PAYMENT:
            return "unchanged"
        for payment in payments:
            row = await session.get(Payment, payment.id)
            if row is not None and row.status == PaymentStatus.PENDING:
                row.status = PaymentStatus.CLOSED.value
        await transition(session, order, OrderStatus.EXPIRED, now=services.clock.now(), actor="system")
    return "expired"
