"""The console's read side: which orders wait in which queue, and everything a staff member
needs to see to act on one (applicant, company, documents, impressions, invoice, history).

Only reads: every change goes through ``staff_actions`` and ``invoices``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from seal_platform.accounts import Account
from seal_platform.companies import Company
from seal_platform.console.previews import ImpressionPreview, order_seals, previews_for
from seal_platform.documents import Document
from seal_platform.invoices import InvoiceRecord, InvoiceStatus
from seal_platform.orders import NEW_SEAL_TYPES, Order, OrderStatus, OrderTransition, OrderType, history
from seal_platform.staff_actions import AuditEntry
from seal_platform.validation import mask_mobile

QUEUE_LIMIT = 200


def _in_review() -> ColumnElement[bool]:
    return Order.status == OrderStatus.UNDER_REVIEW.value


def _ready_for_production() -> ColumnElement[bool]:
    # New seals are made once approved; a reissue (no review) as soon as it is paid.
    return or_(
        and_(Order.type.in_([t.value for t in NEW_SEAL_TYPES]), Order.status == OrderStatus.APPROVED.value),
        and_(Order.type == OrderType.REISSUE.value, Order.status == OrderStatus.PAID.value),
    )


def _ready_to_ship() -> ColumnElement[bool]:
    return Order.status == OrderStatus.IN_PRODUCTION.value


def _in_transit() -> ColumnElement[bool]:
    return Order.status == OrderStatus.SHIPPED.value


@dataclass(frozen=True)
class QueueCounts:
    review: int
    production: int
    shipping: int
    in_transit: int
    invoices: int


async def queue_counts(session: AsyncSession) -> QueueCounts:
    async def count(condition: ColumnElement[bool]) -> int:
        return int(await session.scalar(select(func.count()).select_from(Order).where(condition)) or 0)

    invoices = await session.scalar(
        select(func.count())
        .select_from(InvoiceRecord)
        .where(InvoiceRecord.status == InvoiceStatus.REQUESTED.value)
    )
    return QueueCounts(
        review=await count(_in_review()),
        production=await count(_ready_for_production()),
        shipping=await count(_ready_to_ship()),
        in_transit=await count(_in_transit()),
        invoices=int(invoices or 0),
    )


@dataclass(frozen=True)
class Applicant:
    account_id: str
    phone_masked: str
    real_name: str | None


@dataclass(frozen=True)
class DocumentLink:
    role: str
    document_id: str
    content_type: str
    filename: str
    size: int

    @property
    def is_image(self) -> bool:
        return self.content_type.startswith("image/")


@dataclass
class OrderCard:
    """One order as a queue row or detail page shows it."""

    order: Order
    applicant: Applicant | None
    company: Company | None
    documents: list[DocumentLink] = field(default_factory=list)
    impressions: list[ImpressionPreview] = field(default_factory=list)
    invoice: InvoiceRecord | None = None

    @property
    def change(self) -> dict[str, Any]:
        return dict(self.order.details.get("change") or {})

    @property
    def address(self) -> dict[str, Any]:
        """The mailing address with the recipient's phone masked (a reveal shows it whole)."""
        address = dict(self.order.mailing_address or {})
        phone = str(address.get("phone") or "")
        if phone:
            address["phone"] = phone[:3] + "****" + phone[-4:] if len(phone) == 11 else "*" * len(phone)
        return address


async def _cards(session: AsyncSession, orders: Sequence[Order]) -> list[OrderCard]:
    if not orders:
        return []
    account_ids = {o.account_id for o in orders}
    company_ids = {o.company_id for o in orders if o.company_id}
    document_ids = {d for o in orders for d in o.documents.values()}
    accounts = {a.id: a for a in await session.scalars(select(Account).where(Account.id.in_(account_ids)))}
    companies = {c.id: c for c in await session.scalars(select(Company).where(Company.id.in_(company_ids)))}
    documents = {
        d.id: d for d in await session.scalars(select(Document).where(Document.id.in_(document_ids)))
    }
    invoices = {
        i.order_id: i
        for i in await session.scalars(
            select(InvoiceRecord).where(InvoiceRecord.order_id.in_([o.id for o in orders]))
        )
    }
    cards = []
    for order in orders:
        account = accounts.get(order.account_id)
        company = companies.get(order.company_id) if order.company_id else None
        links = [
            DocumentLink(role, doc.id, doc.content_type, doc.filename, doc.size)
            for role, doc_id in sorted(order.documents.items())
            if (doc := documents.get(doc_id)) is not None
        ]
        cards.append(
            OrderCard(
                order=order,
                applicant=Applicant(account.id, mask_mobile(account.phone), account.real_name)
                if account
                else None,
                company=company,
                documents=links,
                impressions=previews_for(order, company, await order_seals(session, order)),
                invoice=invoices.get(order.id),
            )
        )
    return cards


async def _queue(session: AsyncSession, condition: ColumnElement[bool]) -> list[OrderCard]:
    # Oldest first: whoever has waited longest is served first.
    rows = await session.scalars(select(Order).where(condition).order_by(Order.updated_at).limit(QUEUE_LIMIT))
    return await _cards(session, list(rows))


async def review_queue(session: AsyncSession) -> list[OrderCard]:
    return await _queue(session, _in_review())


async def production_queue(session: AsyncSession) -> list[OrderCard]:
    return await _queue(session, _ready_for_production())


async def shipping_queue(session: AsyncSession) -> list[OrderCard]:
    return await _queue(session, _ready_to_ship())


async def in_transit(session: AsyncSession) -> list[OrderCard]:
    return await _queue(session, _in_transit())


@dataclass(frozen=True)
class InvoiceRow:
    invoice: InvoiceRecord
    order: Order | None


async def invoice_rows(
    session: AsyncSession, status: InvoiceStatus, *, limit: int = QUEUE_LIMIT
) -> list[InvoiceRow]:
    query = select(InvoiceRecord).where(InvoiceRecord.status == status.value)
    if status == InvoiceStatus.REQUESTED:
        query = query.order_by(InvoiceRecord.requested_at)
    else:
        query = query.order_by(InvoiceRecord.issued_at.desc())
    invoices = list(await session.scalars(query.limit(limit)))
    orders = {
        o.id: o
        for o in await session.scalars(select(Order).where(Order.id.in_([i.order_id for i in invoices])))
    }
    return [InvoiceRow(invoice=i, order=orders.get(i.order_id)) for i in invoices]


async def search_orders(session: AsyncSession, *, status: str | None, text: str | None) -> list[OrderCard]:
    """Any order, newest first: by status, and by id prefix, company name, credit code or phone."""
    query = select(Order)
    if status:
        query = query.where(Order.status == status)
    text = (text or "").strip()
    if text:
        like = f"%{_escape_like(text)}%"
        company_ids = select(Company.id).where(
            or_(Company.name.like(like, escape="\\"), Company.uscc == text.upper())
        )
        account_ids = select(Account.id).where(Account.phone == text)
        query = query.where(
            or_(
                Order.id.like(_escape_like(text) + "%", escape="\\"),
                Order.company_id.in_(company_ids),
                Order.account_id.in_(account_ids),
            )
        )
    rows = await session.scalars(query.order_by(Order.created_at.desc()).limit(QUEUE_LIMIT))
    return await _cards(session, list(rows))


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass
class OrderDetail:
    card: OrderCard
    transitions: list[OrderTransition]
    audit: list[AuditEntry]


async def order_detail(session: AsyncSession, order_id: str) -> OrderDetail | None:
    order = await session.get(Order, order_id)
    if order is None:
        return None
    (card,) = await _cards(session, [order])
    related = [order.id] + ([card.invoice.id] if card.invoice else [])
    audit = list(
        await session.scalars(
            select(AuditEntry)
            .where(AuditEntry.object_id.in_(related), AuditEntry.action != "preview_document")
            .order_by(AuditEntry.id)
        )
    )
    return OrderDetail(card=card, transitions=await history(session, order.id), audit=audit)


@dataclass(frozen=True)
class AuditFilter:
    actor: str = ""
    action: str = ""
    object_type: str = ""
    object_id: str = ""
    # Entries with an id below this one (the next page of a newest-first list).
    before_id: int | None = None


AUDIT_PAGE = 100


async def audit_entries(session: AsyncSession, wanted: AuditFilter) -> list[AuditEntry]:
    query = select(AuditEntry)
    if wanted.actor:
        query = query.where(AuditEntry.actor == wanted.actor)
    if wanted.action:
        query = query.where(AuditEntry.action == wanted.action)
    if wanted.object_type:
        query = query.where(AuditEntry.object_type == wanted.object_type)
    if wanted.object_id:
        query = query.where(AuditEntry.object_id == wanted.object_id)
    if wanted.before_id is not None:
        query = query.where(AuditEntry.id < wanted.before_id)
    return list(await session.scalars(query.order_by(AuditEntry.id.desc()).limit(AUDIT_PAGE)))


async def audit_actors(session: AsyncSession) -> list[str]:
    return [
        str(a) for a in await session.scalars(select(AuditEntry.actor).distinct().order_by(AuditEntry.actor))
    ]
