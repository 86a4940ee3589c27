"""Invoices (发票) of paid orders: requested by the applicant, issued by finance (or at once,
by setting), delivered as a PDF document and announced with an ``invoice.issued`` event."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import ForeignKey, Integer, String, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from dbkit.types import UtcDateTime
from seal_platform.db import Base
from seal_platform.documents import DocumentKind, store_document
from seal_platform.errors import Conflict, NotFound, RuleViolation
from seal_platform.events import publish
from seal_platform.orders import Order, OrderStatus
from seal_platform.payments.pay_page import ORDER_TYPE_LABELS
from seal_platform.production.invoice_pdf import Invoice as InvoiceDocument
from seal_platform.production.invoice_pdf import InvoiceLine, InvoiceParty
from seal_platform.services import PlatformServices
from seal_platform.validation import normalise_credit_code

# An invoice may be requested once the order is paid, whatever happened after.
INVOICEABLE = frozenset(
    {
        OrderStatus.PAID,
        OrderStatus.UNDER_REVIEW,
        OrderStatus.REJECTED,
        OrderStatus.RESUBMITTED,
        OrderStatus.APPROVED,
        OrderStatus.IN_PRODUCTION,
        OrderStatus.SHIPPED,
        OrderStatus.AWAITING_UKEY,
        OrderStatus.COMPLETED,
    }
)


class InvoiceStatus(StrEnum):
    REQUESTED = "requested"
    ISSUED = "issued"


class InvoiceRecord(Base):
    __tablename__ = "invoices"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    # One invoice per order.
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), unique=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    tax_number: Mapped[str | None] = mapped_column(String(20), default=None)
    email: Mapped[str] = mapped_column(String(200))
    amount_fen: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), index=True)
    invoice_number: Mapped[str | None] = mapped_column(String(20), default=None)
    document_id: Mapped[str | None] = mapped_column(String(36), default=None)
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime)
    issued_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    issued_by: Mapped[str | None] = mapped_column(String(120), default=None)


class InvoiceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=2, max_length=200)
    # A company buyer gives its credit code; a person gives none.
    tax_number: str | None = None
    # Where the e-invoice is also mailed; a shape check only (no email-validator dependency).
    email: str = Field(max_length=200, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

    @field_validator("tax_number")
    @classmethod
    def _tax_number(cls, value: str | None) -> str | None:
        return normalise_credit_code(value) if value else None


class InvoiceOut(BaseModel):
    id: str
    order_id: str
    title: str
    tax_number: str | None
    email: str
    amount_fen: int
    status: str
    invoice_number: str | None
    document_id: str | None
    requested_at: datetime
    issued_at: datetime | None

    @classmethod
    def of(cls, invoice: InvoiceRecord) -> InvoiceOut:
        return cls.model_validate(invoice, from_attributes=True)


async def request_invoice(
    session: AsyncSession, services: PlatformServices, order: Order, request: InvoiceRequest
) -> InvoiceRecord:
    if order.status not in INVOICEABLE or order.amount_fen <= 0:
        raise RuleViolation(
            "only a paid order can be invoiced", code="order_not_invoiceable", status=order.status
        )
    invoice = InvoiceRecord(
        order_id=order.id,
        account_id=order.account_id,
        title=" ".join(request.title.split()),
        tax_number=request.tax_number,
        email=request.email,
        amount_fen=order.amount_fen,
        status=InvoiceStatus.REQUESTED.value,
        requested_at=services.clock.now(),
    )
    try:
        async with session.begin_nested():
            session.add(invoice)
    except IntegrityError as exc:
        raise Conflict("this order already has an invoice", code="invoice_exists", order_id=order.id) from exc
    if services.settings.invoice_auto_issue:
        return await issue(session, services, invoice.id, actor="system")
    return invoice


def _invoice_number(now: datetime) -> str:
    # 全电发票 numbers are 20 digits starting with the two-digit year.
    return now.strftime("%y") + "".join(secrets.choice("0123456789") for _ in range(18))


async def issue(
    session: AsyncSession, services: PlatformServices, invoice_id: str, *, actor: str
) -> InvoiceRecord:
    """Make the PDF, store it for the applicant, mark the invoice issued, tell the bot."""
    invoice = await session.get(InvoiceRecord, invoice_id)
    if invoice is None:
        raise NotFound("invoice not found", invoice_id=invoice_id)
    if invoice.status != InvoiceStatus.REQUESTED:
        raise RuleViolation("the invoice was already issued", code="invoice_already_issued")
    order = await session.get(Order, invoice.order_id)
    if order is None:
        raise NotFound("order not found", order_id=invoice.order_id)
    now = services.clock.now()
    number = _invoice_number(now)
    settings = services.settings
    document = InvoiceDocument(
        invoice_number=number,
        issued_on=now.date(),
        buyer=InvoiceParty(name=invoice.title, tax_number=invoice.tax_number or ""),
        seller=InvoiceParty(name=settings.invoice_seller_name, tax_number=settings.invoice_seller_tax_number),
        lines=[
            InvoiceLine(
                name=f"*信息技术服务*{ORDER_TYPE_LABELS.get(order.type, '电子印章服务')}",
                quantity=Decimal(1),
                unit_price=Decimal(invoice.amount_fen) / 100,
            )
        ],
        remarks=f"订单号 {order.id}",
    )
    pdf = await asyncio.to_thread(services.invoicing, document)
    stored = await store_document(
        session,
        services,
        account_id=invoice.account_id,
        kind=DocumentKind.INVOICE_PDF,
        data=pdf,
        content_type="application/pdf",
        filename=f"invoice-{number}.pdf",
    )
    moved = await session.execute(
        update(InvoiceRecord)
        .where(InvoiceRecord.id == invoice.id, InvoiceRecord.status == InvoiceStatus.REQUESTED)
        .values(
            status=InvoiceStatus.ISSUED.value,
            invoice_number=number,
            document_id=stored.id,
            issued_at=now,
            issued_by=actor,
        )
        .returning(InvoiceRecord.id)
    )
    if moved.scalar_one_or_none() is None:
        raise RuleViolation("the invoice was already issued", code="invoice_already_issued")
    await session.refresh(invoice)
    from seal_platform.staff_actions import record_audit

    record_audit(
        session,
        actor=actor,
        action="issue_invoice",
        object_type="invoice",
        object_id=invoice.id,
        before={"status": InvoiceStatus.REQUESTED.value},
        after={"status": invoice.status, "invoice_number": number, "document_id": stored.id},
        at=now,
    )
    publish(
        session,
        invoice.account_id,
        "invoice.issued",
        {"invoice_id": invoice.id, "order_id": order.id, "document_id": stored.id, "invoice_number": number},
    )
    return invoice


async def get_invoice(session: AsyncSession, account_id: str, invoice_id: str) -> InvoiceRecord:
    invoice = await session.get(InvoiceRecord, invoice_id)
    if invoice is None or invoice.account_id != account_id:
        raise NotFound("invoice not found", invoice_id=invoice_id)
    return invoice


async def list_for_account(session: AsyncSession, account_id: str) -> list[InvoiceRecord]:
    rows = await session.scalars(
        select(InvoiceRecord)
        .where(InvoiceRecord.account_id == account_id)
        .order_by(InvoiceRecord.requested_at)
    )
    return list(rows)


async def list_all(session: AsyncSession, *, status: str | None = None) -> list[InvoiceRecord]:
    query = select(InvoiceRecord)
    if status is not None:
        query = query.where(InvoiceRecord.status == status)
    return list(await session.scalars(query.order_by(InvoiceRecord.requested_at).limit(500)))
