"""Staff reads of personal data: masked by default, revealed on purpose, and always on record.

Console pages show ID numbers and phone numbers masked. A full value is shown only after the
staff member gives a reason (``reveal``), and a scan only for the work in their queue (a
reviewer reading the scans of an order under review) or after a reason. Every read of an
order's details, of a scan and of a revealed value is an entry in the audit log (who, when,
what, why), which admins search on the audit page.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from seal_platform.accounts import Account, account_id_number
from seal_platform.companies import Company, legal_rep_id
from seal_platform.console.auth import has_any_role
from seal_platform.documents import Document
from seal_platform.errors import InvalidInput, NotFound
from seal_platform.orders import Order, OrderStatus, get_order_any, order_code
from seal_platform.services import PlatformServices
from seal_platform.staff import StaffRole, StaffUser
from seal_platform.staff_actions import record_audit

MIN_REASON = 4

# What a reveal may show, by name, with its label (``_value`` reads it from the order).
REVEALABLE = {
    "mailing_phone": "收件人电话",
    "mailing_address": "收件地址",
    "applicant_phone": "申请人手机号",
    "applicant_id_number": "申请人身份证号",
    "legal_rep_id": "法定代表人身份证号",
}

# The work a scan is read for without a typed reason: (order statuses, role, purpose).
_QUEUE_WORK = (
    (frozenset({OrderStatus.UNDER_REVIEW, OrderStatus.RESUBMITTED}), StaffRole.REVIEWER, "审核"),
    (frozenset({OrderStatus.APPROVED, OrderStatus.IN_PRODUCTION}), StaffRole.PRODUCER, "制作"),
)


def clean_reason(reason: str) -> str:
    reason = " ".join(reason.split())
    if len(reason) < MIN_REASON:
        raise InvalidInput(f"请填写查看理由（至少 {MIN_REASON} 个字）。", code="reveal_reason_required")
    return reason


def record_read(
    session: AsyncSession,
    services: PlatformServices,
    staff: StaffUser,
    *,
    action: str,
    object_type: str,
    object_id: str,
    what: dict[str, str],
) -> None:
    record_audit(
        session,
        actor=staff.actor,
        action=action,
        object_type=object_type,
        object_id=object_id,
        before=None,
        after=what,
        at=services.clock.now(),
    )


async def scan_purpose(
    session: AsyncSession, staff: StaffUser, document: Document, reason: str
) -> str | None:
    """Why this staff member reads this scan: their reason, or the queue work it belongs to;
    ``None`` when neither (the console then asks for a reason)."""
    if reason.strip():
        return clean_reason(reason)
    orders = await session.scalars(select(Order).where(Order.account_id == document.account_id))
    for order in orders:
        if document.id not in (order.documents or {}).values():
            continue
        for statuses, role, work in _QUEUE_WORK:
            if order.status in statuses and has_any_role(staff, (role,)):
                return f"{work}订单 {order_code(order.id)}"
    return None


@dataclass(frozen=True)
class Revealed:
    field: str
    label: str
    value: str


async def reveal(
    session: AsyncSession,
    services: PlatformServices,
    staff: StaffUser,
    order_id: str,
    field: str,
    reason: str,
) -> Revealed:
    """The full value of ``field`` of the order, recorded with ``reason`` in the audit log."""
    if field not in REVEALABLE:
        raise InvalidInput("没有这项信息。", code="reveal_field_unknown")
    reason = clean_reason(reason)
    order = await get_order_any(session, order_id)
    value = await _value(session, services, order, field)
    if value is None:
        raise NotFound("这项信息不存在。", code="reveal_value_missing")
    record_read(
        session,
        services,
        staff,
        action="reveal_value",
        object_type="order",
        object_id=order.id,
        what={"field": field, "reason": reason},
    )
    return Revealed(field, REVEALABLE[field], value)


async def _value(session: AsyncSession, services: PlatformServices, order: Order, field: str) -> str | None:
    address = order.mailing_address or {}
    if field == "mailing_phone":
        return str(address["phone"]) if address.get("phone") else None
    if field == "mailing_address":
        parts = ("recipient", "province", "city", "district", "address")
        return " ".join(str(address.get(p, "")) for p in parts).strip() or None
    if field in ("applicant_phone", "applicant_id_number"):
        account = await session.get(Account, order.account_id)
        if account is None:
            return None
        return account.phone if field == "applicant_phone" else account_id_number(services, account)
    company = await session.get(Company, order.company_id) if order.company_id else None
    return legal_rep_id(services, company) if company is not None else None
