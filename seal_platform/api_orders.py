"""REST endpoints of an applicant's orders: create, edit, submit, cancel, resubmit, history."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Header, Response, status
from pydantic import BaseModel, Field

from seal_platform import invoices, order_rules, sms
from seal_platform.auth import AccountDep, ServicesDep, service_router
from seal_platform.documents import get_document, read_content
from seal_platform.errors import NotFound
from seal_platform.invoices import InvoiceOut, InvoiceRequest
from seal_platform.order_rules import OrderCreate, OrderUpdate
from seal_platform.orders import PRIVATE_RESULT_KEYS, Order, get_order, history, list_orders
from seal_platform.payments import close_pending_payments
from seal_platform.pricing import price_list

router = service_router(prefix="/v1", tags=["orders"])


class OrderOut(BaseModel):
    id: str
    code: str  # the order number people see (``orders.order_code``)
    type: str
    status: str
    company_id: str | None
    seal_id: str | None
    years: int | None
    amount_fen: int
    mailing_address: dict[str, Any] | None
    documents: dict[str, str]
    details: dict[str, Any]
    result: dict[str, Any]
    reject_reason: str | None
    waybill: str | None
    tracking_url: str | None
    payment_deadline: datetime | None
    paid_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, order: Order) -> OrderOut:
        out = cls.model_validate(order, from_attributes=True)
        out.result = {k: v for k, v in out.result.items() if k not in PRIVATE_RESULT_KEYS}
        return out


class TransitionOut(BaseModel):
    from_status: str
    to_status: str
    actor: str
    reason: str | None
    at: datetime


class CancellationConfirm(BaseModel):
    sms_code: str = Field(min_length=4, max_length=8)


class PriceList(BaseModel):
    currency: str
    validity_years_options: list[int]
    per_year_fen: dict[str, int]
    flat_fen: dict[str, int]


IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]


@router.get("/prices", response_model=PriceList)
async def get_prices(services: ServicesDep) -> PriceList:
    return PriceList.model_validate(price_list(services.settings))


@router.post("/orders", status_code=status.HTTP_201_CREATED, response_model=OrderOut)
async def create_order(
    body: OrderCreate,
    services: ServicesDep,
    account: AccountDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> OrderOut:
    """Create a draft. The same ``Idempotency-Key`` with the same body returns the same order."""
    async with services.db.session() as session:
        order, created = await order_rules.create_order(
            session, services, account, body, idempotency_key=idempotency_key
        )
        out = OrderOut.of(order)
    if not created:
        response.status_code = status.HTTP_200_OK
    return out


@router.get("/orders", response_model=list[OrderOut])
async def get_orders(services: ServicesDep, account: AccountDep, status: str | None = None) -> list[OrderOut]:
    async with services.db.session() as session:
        return [OrderOut.of(o) for o in await list_orders(session, account.id, status=status)]


@router.get("/orders/{order_id}", response_model=OrderOut)
async def get_one(order_id: str, services: ServicesDep, account: AccountDep) -> OrderOut:
    async with services.db.session() as session:
        return OrderOut.of(await get_order(session, account.id, order_id))


@router.patch("/orders/{order_id}", response_model=OrderOut)
async def edit(order_id: str, body: OrderUpdate, services: ServicesDep, account: AccountDep) -> OrderOut:
    async with services.db.session() as session:
        order = await get_order(session, account.id, order_id)
        return OrderOut.of(await order_rules.update_order(session, services, account, order, body))


@router.post("/orders/{order_id}/submit", response_model=OrderOut)
async def submit(order_id: str, services: ServicesDep, account: AccountDep) -> OrderOut:
    async with services.db.session() as session:
        order = await get_order(session, account.id, order_id)
        return OrderOut.of(await order_rules.submit_order(session, services, account, order))


@router.post("/orders/{order_id}/abandon-ukey-step", response_model=OrderOut)
async def abandon_ukey_step(order_id: str, services: ServicesDep, account: AccountDep) -> OrderOut:
    async with services.db.session() as session:
        order = await get_order(session, account.id, order_id)
        return OrderOut.of(await order_rules.abandon_ukey_step(session, services, account, order))


@router.post("/orders/{order_id}/withdraw", response_model=OrderOut)
async def withdraw(order_id: str, services: ServicesDep, account: AccountDep) -> OrderOut:
    """Withdraw a paid order before anything is made for it; the payment is refunded."""
    async with services.db.session() as session:
        order = await get_order(session, account.id, order_id)
        return OrderOut.of(await order_rules.withdraw_paid_order(session, services, account, order))


@router.post("/orders/{order_id}/cancel", response_model=OrderOut)
async def cancel(order_id: str, services: ServicesDep, account: AccountDep) -> OrderOut:
    async with services.db.session() as session:
        order = await get_order(session, account.id, order_id)
        out = OrderOut.of(await order_rules.cancel_order(session, services, account, order))
    # After the commit, so the provider call holds no database lock: from now on the provider
    # refuses payment of this order (a payment that still slips through is marked for refund).
    await close_pending_payments(services, order_id)
    return out


@router.post("/orders/{order_id}/resubmit", response_model=OrderOut)
async def resubmit(order_id: str, body: OrderUpdate, services: ServicesDep, account: AccountDep) -> OrderOut:
    """Send a rejected order back to review with the fixes the reviewer asked for."""
    async with services.db.session() as session:
        order = await get_order(session, account.id, order_id)
        return OrderOut.of(await order_rules.resubmit_order(session, services, account, order, body))


@router.post("/orders/{order_id}/confirm-cancellation", response_model=OrderOut)
async def confirm_cancellation(
    order_id: str, body: CancellationConfirm, services: ServicesDep, account: AccountDep
) -> OrderOut:
    """Cancel the seal; the code comes from ``POST /v1/sms-codes`` with purpose ``cancel_seal``."""
    async with services.db.session() as session:
        order_rules.check_cancellation_open(await get_order(session, account.id, order_id))
    # Verified while no session is held: the check commits its attempt in a transaction of its own.
    code_id = await sms.verify_code(
        services, phone=account.phone, purpose=sms.SmsPurpose.CANCEL_SEAL, code=body.sms_code
    )
    async with services.db.session() as session:
        order = await get_order(session, account.id, order_id)
        return OrderOut.of(await order_rules.confirm_cancellation(session, services, account, order, code_id))


@router.get("/orders/{order_id}/history", response_model=list[TransitionOut])
async def order_history(order_id: str, services: ServicesDep, account: AccountDep) -> list[TransitionOut]:
    async with services.db.session() as session:
        order = await get_order(session, account.id, order_id)
        return [
            TransitionOut.model_validate(t, from_attributes=True) for t in await history(session, order.id)
        ]


@router.post("/orders/{order_id}/invoice", status_code=status.HTTP_201_CREATED, response_model=InvoiceOut)
async def request_invoice(
    order_id: str, body: InvoiceRequest, services: ServicesDep, account: AccountDep
) -> InvoiceOut:
    """Ask for the e-invoice of a paid order; ``invoice.issued`` follows when finance issues it."""
    async with services.db.session() as session:
        order = await get_order(session, account.id, order_id)
        invoice = await invoices.request_invoice(session, services, order, body)
    if invoices.issues_automatically(services):
        invoice = await invoices.issue_requested(services, invoice)
    return InvoiceOut.of(invoice)


class InvoiceOptions(BaseModel):
    # Whether issued invoices are also e-mailed: the chat asks for an address only then.
    email_delivery: bool


@router.get("/invoice-options", response_model=InvoiceOptions)
async def invoice_options(services: ServicesDep) -> InvoiceOptions:
    from seal_platform.mail import mail_enabled

    return InvoiceOptions(email_delivery=mail_enabled(services.settings))


@router.get("/invoices", response_model=list[InvoiceOut])
async def get_invoices(services: ServicesDep, account: AccountDep) -> list[InvoiceOut]:
    async with services.db.session() as session:
        return [InvoiceOut.of(i) for i in await invoices.list_for_account(session, account.id)]


@router.get("/invoices/{invoice_id}", response_model=InvoiceOut)
async def get_invoice(invoice_id: str, services: ServicesDep, account: AccountDep) -> InvoiceOut:
    async with services.db.session() as session:
        return InvoiceOut.of(await invoices.get_invoice(session, account.id, invoice_id))


@router.get("/invoices/{invoice_id}/pdf")
async def invoice_pdf(invoice_id: str, services: ServicesDep, account: AccountDep) -> Response:
    async with services.db.session() as session:
        invoice = await invoices.get_invoice(session, account.id, invoice_id)
        if invoice.document_id is None:
            raise NotFound("the invoice is not issued yet", invoice_id=invoice_id)
        document = await get_document(session, account.id, invoice.document_id)
    return Response(
        await read_content(services, document),
        media_type=document.content_type,
        headers={"Content-Disposition": f'attachment; filename="{document.filename}"'},
    )


class UkeyJobOut(BaseModel):
    order_id: str
    order_type: str
    seal_id: str
    key_serial: str | None
    certificate_issued: bool
    reset_pin_to: str | None = None


class CertifyKeyIn(BaseModel):
    key_serial: str = Field(min_length=1, max_length=64)
    # The key's public key (SubjectPublicKeyInfo PEM) or a CSR made with it (PEM).
    public_key_pem: str = Field(min_length=40, max_length=20000)


class CertifiedKeyOut(BaseModel):
    certificate_pem: str
    certificate_serial: str
    valid_from: datetime
    valid_to: datetime
    impression_document_id: str
    seseal_document_id: str


class UkeyDoneIn(BaseModel):
    key_serial: str = Field(min_length=1, max_length=64)


class SoPinOut(BaseModel):
    so_pin: str


@router.get("/orders/{order_id}/ukey-job", response_model=UkeyJobOut)
async def get_ukey_job(order_id: str, services: ServicesDep, account: AccountDep) -> UkeyJobOut:
    """What the UKey bridge must do for a paid renewal, an approved change or a paid unlock."""
    async with services.db.session() as session:
        order = await get_order(session, account.id, order_id)
        return UkeyJobOut.model_validate(await order_rules.ukey_job(session, services, order))


@router.post("/orders/{order_id}/ukey-job/certificate", response_model=CertifiedKeyOut)
async def certify_key(
    order_id: str, body: CertifyKeyIn, services: ServicesDep, account: AccountDep
) -> CertifiedKeyOut:
    """Renewal / change: certify the key's public key; the bridge writes certificate and seal."""
    async with services.db.session() as session:
        order = await get_order(session, account.id, order_id)
        pending = await order_rules.certify_key(
            session, services, order, key_serial=body.key_serial, public_key=body.public_key_pem.encode()
        )
        return CertifiedKeyOut.model_validate(pending)


@router.get("/orders/{order_id}/ukey-job/so-pin", response_model=SoPinOut)
async def so_pin(order_id: str, services: ServicesDep, account: AccountDep) -> SoPinOut:
    """The SO PIN for the paid unlock job of this order (service credential + the order's owner)."""
    async with services.db.session() as session:
        order = await get_order(session, account.id, order_id)
        return SoPinOut(so_pin=await order_rules.release_so_pin(session, services, account, order))


@router.post("/orders/{order_id}/ukey-job/complete", response_model=OrderOut)
async def complete_ukey_job(
    order_id: str, body: UkeyDoneIn, services: ServicesDep, account: AccountDep
) -> OrderOut:
    async with services.db.session() as session:
        order = await get_order(session, account.id, order_id)
        done = await order_rules.complete_ukey_job(
            session, services, account, order, key_serial=body.key_serial
        )
        return OrderOut.of(done)
