"""Invoices (发票) of paid orders: requested by the applicant, issued through the invoicing port
(``seal_platform.invoicing``: the tax system via Nuonuo, or finance's upload; a drawn sample in
the embedded default), delivered as a document, e-mailed when SMTP is set, and announced with an
``invoice.issued`` event.

``issue`` holds no session while the provider works (Nuonuo is asked, then polled for seconds):
one short transaction reads the request, the provider is called with the session released, and
a second one records the result only if the invoice is still requested. The e-mail is queued in
that second transaction and sent after it commits (``mail_outbox``): a rolled-back issue never
mails.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import uuid
from datetime import date, datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import ForeignKey, Integer, String, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from dbkit.types import UtcDateTime
from seal_platform.db import Base
from seal_platform.documents import Document, DocumentKind, store_document
from seal_platform.errors import Conflict, InvalidInput, NotFound, PlatformError, RuleViolation
from seal_platform.events import publish
from seal_platform.field_crypto import EncryptedText
from seal_platform.invoicing import (
    Amounts,
    InvoiceOrder,
    InvoiceStillPending,
    IssuedFile,
    IssuedInvoice,
    tax_rate,
)
from seal_platform.invoicing.adapters import (
    check_against_order,
    provider_for,
    read_invoice_xml,
    sniff_upload,
)
from seal_platform.mail import queue_invoice_mail
from seal_platform.notices import queue_invoice_notice
from seal_platform.orders import Order, OrderStatus, order_code
from seal_platform.payments.pay_page import ORDER_TYPE_LABELS
from seal_platform.services import PlatformServices
from seal_platform.validation import normalise_credit_code

log = logging.getLogger(__name__)

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
    # The buyer's details are personal data (a person's name, an e-mail): encrypted at rest.
    title: Mapped[str] = mapped_column(EncryptedText("invoices.title"))
    tax_number: Mapped[str | None] = mapped_column(EncryptedText("invoices.tax_number"), default=None)
    email: Mapped[str] = mapped_column(EncryptedText("invoices.email"))
    amount_fen: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), index=True)
    invoice_number: Mapped[str | None] = mapped_column(String(20), default=None)
    document_id: Mapped[str | None] = mapped_column(String(36), default=None)
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime)
    issued_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    issued_by: Mapped[str | None] = mapped_column(String(120), default=None)
    # The "issuing" claim: set (conditionally) by the one caller that is asking the provider now,
    # cleared when that call fails; a claim older than ``ISSUING_CLAIM_SECONDS`` is a crashed
    # caller's and may be taken over.
    issuing_since: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    # The provider's serial number of a request whose result had not come back: the next issue
    # asks for that request instead of submitting again (``InvoiceStillPending``).
    provider_serial: Mapped[str | None] = mapped_column(String(64), default=None)

    @property
    def order_code(self) -> str:
        return order_code(self.order_id)


class InvoiceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=2, max_length=200)
    # A company buyer gives its credit code; a person gives none.
    tax_number: str | None = None
    # Where the e-invoice is also mailed (only when the platform has SMTP settings); a shape
    # check only (no email-validator dependency).
    email: str | None = Field(default=None, max_length=200, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

    @field_validator("tax_number")
    @classmethod
    def _tax_number(cls, value: str | None) -> str | None:
        return normalise_credit_code(value) if value else None


class InvoiceOut(BaseModel):
    id: str
    order_id: str
    order_code: str  # the order number people see (``orders.order_code``)
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
        email=request.email or "",
        amount_fen=order.amount_fen,
        status=InvoiceStatus.REQUESTED.value,
        requested_at=services.clock.now(),
    )
    try:
        async with session.begin_nested():
            session.add(invoice)
    except IntegrityError as exc:
        raise Conflict("this order already has an invoice", code="invoice_exists", order_id=order.id) from exc
    return invoice


def issues_automatically(services: PlatformServices) -> bool:
    """Whether a request is issued at once (``issue_requested`` after its commit); finance upload
    manual invoices themselves."""
    settings = services.settings
    return settings.invoice_auto_issue and settings.effective_invoice_provider != "manual"


async def issue_requested(services: PlatformServices, invoice: InvoiceRecord) -> InvoiceRecord:
    """Issue a just-requested invoice at once (the caller's transaction has committed).

    A provider failure leaves the request in finance's queue instead of undoing it: the
    applicant asked, and finance can issue it again from the console.
    """
    try:
        return await issue(services, invoice.id, actor="system")
    except PlatformError as exc:
        log.warning("invoice %s not issued automatically: %s", invoice.id, exc.code)
        return invoice


def _drawer(services: PlatformServices, actor: str) -> str:
    """开票人: from settings, else the staff member who issues it."""
    if services.settings.invoice_drawer:
        return services.settings.invoice_drawer
    return actor.removeprefix("staff:") if actor.startswith("staff:") else "系统"


def amounts_of(services: PlatformServices, invoice: InvoiceRecord) -> Amounts:
    return Amounts.of(invoice.amount_fen, tax_rate(services.settings.invoice_tax_rate))


async def _requested(session: AsyncSession, invoice_id: str) -> tuple[InvoiceRecord, Order]:
    invoice = await session.get(InvoiceRecord, invoice_id)
    if invoice is None:
        raise NotFound("invoice not found", invoice_id=invoice_id)
    if invoice.status != InvoiceStatus.REQUESTED:
        raise RuleViolation("the invoice was already issued", code="invoice_already_issued")
    order = await session.get(Order, invoice.order_id)
    if order is None:
        raise NotFound("order not found", order_id=invoice.order_id)
    return invoice, order


# Longer than any provider call with its polling (Nuonuo: 20 polls 3 s apart): a claim this
# old belongs to a process that died mid-call.
ISSUING_CLAIM_SECONDS = 600


class InvoiceBeingIssued(RuleViolation):
    """Another caller is asking the provider for this invoice right now."""


async def _claim_issuing(session: AsyncSession, services: PlatformServices, invoice_id: str) -> None:
    """Take the "issuing" claim with one conditional update: of two clicks at once, exactly
    one finds the invoice requested and unclaimed (or its claim stale)."""
    now = services.clock.now()
    stale = now - timedelta(seconds=ISSUING_CLAIM_SECONDS)
    claimed = await session.execute(
        update(InvoiceRecord)
        .where(
            InvoiceRecord.id == invoice_id,
            InvoiceRecord.status == InvoiceStatus.REQUESTED,
            or_(InvoiceRecord.issuing_since.is_(None), InvoiceRecord.issuing_since < stale),
        )
        .values(issuing_since=now)
        .returning(InvoiceRecord.id)
    )
    if claimed.scalar_one_or_none() is None:
        raise InvoiceBeingIssued(
            "the invoice is being issued by another request", code="invoice_being_issued"
        )


async def _keep_serial(services: PlatformServices, invoice_id: str, serial: str) -> None:
    """The provider accepted the request as ``serial``: stored at once, in a transaction of its
    own, while the claim is still held (see ``InvoicingProvider.issue``)."""
    async with services.db.session() as session:
        await session.execute(
            update(InvoiceRecord)
            .where(InvoiceRecord.id == invoice_id, InvoiceRecord.status == InvoiceStatus.REQUESTED)
            .values(provider_serial=serial)
        )


async def _release_issuing(services: PlatformServices, invoice_id: str, serial: str | None) -> None:
    """Give the claim back; ``serial``: the provider's request still pending, kept for the retry."""
    kept = {"provider_serial": serial} if serial else {}
    async with services.db.session() as session:
        await session.execute(
            update(InvoiceRecord)
            .where(InvoiceRecord.id == invoice_id, InvoiceRecord.status == InvoiceStatus.REQUESTED)
            .values(issuing_since=None, **kept)
        )


async def issue(services: PlatformServices, invoice_id: str, *, actor: str) -> InvoiceRecord:
    """Issue through the configured adapter (``invoicing``), store the files, tell the bot.

    Opens its own sessions (the caller holds none): the provider is called between them. The
    first, short transaction takes the "issuing" claim, so that only one caller reaches the
    provider; a failure releases it, so that the invoice can be issued again.
    """
    async with services.db.session() as session:
        invoice, order = await _requested(session, invoice_id)
        request = _invoice_order(services, invoice, order, actor)
        await _claim_issuing(session, services, invoice_id)
    try:
        issued = await provider_for(services).issue(
            request, accepted=functools.partial(_keep_serial, services, invoice_id)
        )
        async with services.db.session() as session:
            invoice, order = await _requested(session, invoice_id)
            return await _record_issued(session, services, invoice, order, issued, actor=actor)
    except BaseException as exc:
        # cancelled or failed: the next click may ask the provider again
        serial = exc.serial if isinstance(exc, InvoiceStillPending) else None
        await asyncio.shield(_release_issuing(services, invoice_id, serial))
        raise


def _invoice_order(
    services: PlatformServices, invoice: InvoiceRecord, order: Order, actor: str
) -> InvoiceOrder:
    settings = services.settings
    remarks = f"订单号 {order_code(order.id)}"
    if settings.invoice_seller_address:
        remarks += f"；销方地址电话：{settings.invoice_seller_address}"
    if settings.invoice_seller_bank:
        remarks += f"；销方开户行及账号：{settings.invoice_seller_bank}"
    return InvoiceOrder(
        reference=invoice.id,
        buyer_name=invoice.title,
        buyer_tax_number=invoice.tax_number or "",
        buyer_email=invoice.email,
        item_name=f"*信息技术服务*{ORDER_TYPE_LABELS.get(order.type, '电子印章服务')}",
        amounts=amounts_of(services, invoice),
        drawer=_drawer(services, actor),
        remarks=remarks,
        provider_serial=invoice.provider_serial or "",
    )


async def issue_uploaded(
    session: AsyncSession,
    services: PlatformServices,
    invoice_id: str,
    files: list[bytes],
    *,
    actor: str,
    number: str = "",
    issued_on: date | None = None,
) -> InvoiceRecord:
    """The manual adapter: finance upload what the tax system issued (PDF, OFD and/or XML).

    Number, date and amounts are read from the XML when one is given; otherwise the number and
    date are typed in. The amounts must be the order's (``check_against_order``).
    """
    invoice, order = await _requested(session, invoice_id)
    if not files or not any(files):
        raise InvalidInput("请上传发票文件（PDF、OFD 或 XML）", code="invoice_file_missing")
    typed: list[tuple[str, str, bytes]] = []
    facts = None
    for data in files:
        content_type, extension = sniff_upload(data)
        typed.append((content_type, extension, data))
        if extension == "xml":
            facts = read_invoice_xml(data)
    expected = amounts_of(services, invoice)
    if facts is not None:
        if number and number.strip() != facts.number:
            raise InvalidInput("填写的发票号码与 XML 不一致", code="invoice_number_mismatch")
        if facts.amounts_fen is not None:
            check_against_order(facts.amounts_fen, expected)
        number, issued_on = facts.number, facts.issued_on
    number = number.strip()
    if not re.fullmatch(r"\d{8,20}", number) or issued_on is None:
        raise InvalidInput("请填写发票号码（8 至 20 位数字）和开票日期", code="invoice_number_required")
    # The chat delivers the first file: PDF before OFD before XML.
    order_of = {"pdf": 0, "ofd": 1, "xml": 2}
    typed.sort(key=lambda item: order_of[item[1]])
    issued = IssuedInvoice(
        number=number,
        issued_on=issued_on,
        files=[IssuedFile(f"invoice-{number}.{ext}", ctype, data) for ctype, ext, data in typed],
    )
    return await _record_issued(session, services, invoice, order, issued, actor=actor)


async def _record_issued(
    session: AsyncSession,
    services: PlatformServices,
    invoice: InvoiceRecord,
    order: Order,
    issued: IssuedInvoice,
    *,
    actor: str,
) -> InvoiceRecord:
    now = services.clock.now()
    number = issued.number
    stored: list[Document] = []
    for file in issued.files:
        document = await store_document(
            session,
            services,
            account_id=invoice.account_id,
            kind=DocumentKind.INVOICE_PDF,
            data=file.data,
            content_type=file.content_type,
            filename=file.filename,
        )
        stored.append(document)
    document_id = stored[0].id
    moved = await session.execute(
        update(InvoiceRecord)
        .where(InvoiceRecord.id == invoice.id, InvoiceRecord.status == InvoiceStatus.REQUESTED)
        .values(
            status=InvoiceStatus.ISSUED.value,
            invoice_number=number,
            document_id=document_id,
            issued_at=now,
            issued_by=actor,
            issuing_since=None,
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
        after={"status": invoice.status, "invoice_number": number, "document_id": document_id},
        at=now,
    )
    emailed = queue_invoice_mail(
        session,
        services.settings,
        now=now,
        account_id=invoice.account_id,
        to=invoice.email,
        issued=issued,
        documents=stored,
    )
    await queue_invoice_notice(
        session,
        account_id=invoice.account_id,
        order_code=order_code(order.id),
        number=number,
        mailed_to=invoice.email if emailed else None,
        now=now,
    )
    publish(
        session,
        invoice.account_id,
        "invoice.issued",
        {
            "invoice_id": invoice.id,
            "order_id": order.id,
            "order_code": order_code(order.id),
            "document_id": document_id,
            "invoice_number": number,
            "emailed_to": invoice.email if emailed else None,
        },
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
