"""Staff endpoints under ``/v1/staff``: login, the order queue, review, production, shipping,
invoices, document preview and the audit log. Each action needs its role (``require_staff``)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import Depends, File, Form, Request, Response, UploadFile, status
from pydantic import BaseModel, Field
from sqlalchemy import select

from seal_platform import invoices, staff_actions
from seal_platform.api_documents import _read_limited, attachment
from seal_platform.api_orders import OrderOut
from seal_platform.auth import ServicesDep, service_router
from seal_platform.documents import get_document_any, read_content
from seal_platform.invoices import InvoiceOut
from seal_platform.orders import Order, get_order_any, history
from seal_platform.staff import StaffDep, StaffRole, StaffUser, issue_token, require_staff
from seal_platform.staff_signin import sign_in

# Only services holding the service key reach the staff API (the bot's support inbox, tools).
router = service_router(prefix="/v1/staff", tags=["staff"])

Reviewer = Annotated[StaffUser, Depends(require_staff(StaffRole.REVIEWER))]
Producer = Annotated[StaffUser, Depends(require_staff(StaffRole.PRODUCER))]
Shipper = Annotated[StaffUser, Depends(require_staff(StaffRole.SHIPPER))]
Finance = Annotated[StaffUser, Depends(require_staff(StaffRole.FINANCE))]
Admin = Annotated[StaffUser, Depends(require_staff(StaffRole.ADMIN))]


class StaffLogin(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=128)
    # The address of the person signing in, when the caller is a console in front of them.
    client_ip: str | None = Field(default=None, max_length=64)


class StaffSession(BaseModel):
    token: str
    username: str
    roles: list[str]


class RejectIn(BaseModel):
    reason: str = Field(min_length=4, max_length=500)


class ShipIn(BaseModel):
    waybill: str = Field(min_length=1, max_length=40)


class AuditOut(BaseModel):
    id: int
    actor: str
    action: str
    object_type: str
    object_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    at: datetime


class StaffOrderOut(OrderOut):
    account_id: str
    history: list[dict[str, Any]] = Field(default_factory=list)


@router.post("/sessions", status_code=status.HTTP_201_CREATED, response_model=StaffSession)
async def staff_login(body: StaffLogin, request: Request, services: ServicesDep) -> StaffSession:
    """A staff token; the same throttling as the console. Callers hold the service key, so the
    address they report for their own user (the support inbox's visitor) is trusted."""
    ip = body.client_ip or (request.client.host if request.client else "unknown")
    user = await sign_in(services, body.username, body.password, ip)
    async with services.db.session() as session:
        token = await issue_token(session, services, user)
        return StaffSession(token=token, username=user.username, roles=list(user.roles))


@router.get("/orders", response_model=list[StaffOrderOut])
async def queue(
    services: ServicesDep, _staff: StaffDep, status: str | None = None, limit: int = 100
) -> list[StaffOrderOut]:
    """Orders oldest first, e.g. ``?status=under_review`` is the review queue."""
    async with services.db.session() as session:
        query = select(Order)
        if status is not None:
            query = query.where(Order.status == status)
        rows = await session.scalars(query.order_by(Order.updated_at).limit(min(limit, 500)))
        return [StaffOrderOut.model_validate(o, from_attributes=True) for o in rows]


@router.get("/orders/{order_id}", response_model=StaffOrderOut)
async def staff_order(order_id: str, services: ServicesDep, _staff: StaffDep) -> StaffOrderOut:
    async with services.db.session() as session:
        order = await get_order_any(session, order_id)
        out = StaffOrderOut.model_validate(order, from_attributes=True)
        out.history = [
            {"from": t.from_status, "to": t.to_status, "actor": t.actor, "reason": t.reason, "at": t.at}
            for t in await history(session, order.id)
        ]
        return out


def _out(order: Order) -> StaffOrderOut:
    return StaffOrderOut.model_validate(order, from_attributes=True)


@router.post("/orders/{order_id}/approve", response_model=StaffOrderOut)
async def approve(order_id: str, services: ServicesDep, staff: Reviewer) -> StaffOrderOut:
    async with services.db.session() as session:
        return _out(await staff_actions.approve(session, services, staff, order_id))


@router.post("/orders/{order_id}/reject", response_model=StaffOrderOut)
async def reject(order_id: str, body: RejectIn, services: ServicesDep, staff: Reviewer) -> StaffOrderOut:
    async with services.db.session() as session:
        return _out(await staff_actions.reject(session, services, staff, order_id, body.reason))


@router.post("/orders/{order_id}/produce", response_model=StaffOrderOut)
async def produce(order_id: str, services: ServicesDep, staff: Producer) -> StaffOrderOut:
    # opens its own short sessions: none is held while the station writes the keys
    return _out(await staff_actions.produce(services, staff, order_id))


@router.post("/orders/{order_id}/ship", response_model=StaffOrderOut)
async def ship(order_id: str, body: ShipIn, services: ServicesDep, staff: Shipper) -> StaffOrderOut:
    async with services.db.session() as session:
        return _out(await staff_actions.ship(session, services, staff, order_id, body.waybill))


@router.post("/orders/{order_id}/complete", response_model=StaffOrderOut)
async def complete(order_id: str, services: ServicesDep, staff: Shipper) -> StaffOrderOut:
    async with services.db.session() as session:
        return _out(await staff_actions.complete(session, services, staff, order_id))


@router.get("/documents/{document_id}/content")
async def preview(document_id: str, services: ServicesDep, staff: StaffDep) -> Response:
    """Staff preview of an uploaded scan (any account's: reviewing them is the job)."""
    async with services.db.session() as session:
        document = await get_document_any(session, document_id)
        staff_actions.record_audit(
            session,
            actor=staff.actor,
            action="preview_document",
            object_type="document",
            object_id=document.id,
            before=None,
            after=None,
            at=services.clock.now(),
        )
    return attachment(await read_content(services, document), document.content_type, document.filename)


@router.get("/invoices", response_model=list[InvoiceOut])
async def invoice_queue(
    services: ServicesDep, _staff: Finance, status: str | None = None
) -> list[InvoiceOut]:
    async with services.db.session() as session:
        return [InvoiceOut.of(i) for i in await invoices.list_all(session, status=status)]


@router.post("/invoices/{invoice_id}/issue", response_model=InvoiceOut)
async def issue_invoice(invoice_id: str, services: ServicesDep, staff: Finance) -> InvoiceOut:
    # No session here: the provider is called between the two short ones ``issue`` opens.
    return InvoiceOut.of(await invoices.issue(services, invoice_id, actor=staff.actor))


@router.post("/invoices/{invoice_id}/upload", response_model=InvoiceOut)
async def upload_invoice(
    invoice_id: str,
    services: ServicesDep,
    staff: Finance,
    files: Annotated[list[UploadFile], File()],
    number: Annotated[str, Form(max_length=20)] = "",
    issued_on: Annotated[date | None, Form()] = None,
) -> InvoiceOut:
    """The manual adapter: the invoice finance issued in the tax system (PDF, OFD and/or XML)."""
    contents = [await _read_limited(upload, services.settings.upload_max_bytes) for upload in files]
    async with services.db.session() as session:
        issued = await invoices.issue_uploaded(
            session, services, invoice_id, contents, actor=staff.actor, number=number, issued_on=issued_on
        )
        return InvoiceOut.of(issued)


@router.get("/audit", response_model=list[AuditOut])
async def audit(services: ServicesDep, _staff: Admin, object_id: str | None = None) -> list[AuditOut]:
    async with services.db.session() as session:
        rows = await staff_actions.audit_log(session, object_id=object_id)
        return [AuditOut.model_validate(r, from_attributes=True) for r in rows]
