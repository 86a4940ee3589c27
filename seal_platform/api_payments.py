"""Payment endpoints: start a payment (bot), provider notifications, and the sandbox pay page.

``router`` needs the service credential like every bot-facing route. ``public_router`` is what
outsiders reach: the provider's notification endpoint (authenticated by the provider's
signature, not by our key) and the sandbox pay page (the unguessable payment id is the
capability, as with a WeChat code_url).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from fastapi import APIRouter, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from seal_platform import payments
from seal_platform.auth import AccountDep, ServicesDep, service_router
from seal_platform.errors import NotFound, PlatformError
from seal_platform.orders import Order, get_order, order_code
from seal_platform.payments.base import PayChannel
from seal_platform.payments.notifications import process_notification
from seal_platform.payments.pay_page import render_pay_page
from seal_platform.payments.sandbox import SandboxProvider
from seal_platform.production.qr import payment_qr_png

log = logging.getLogger(__name__)

router = service_router(prefix="/v1", tags=["payments"])
public_router = APIRouter(tags=["payments"])
# The sandbox's public pay page: mounted only with the sandbox provider outside production
# (``app._routers``), because a bare POST to it marks an order paid.
sandbox_pages = APIRouter(tags=["payments"])


class PaymentStartIn(BaseModel):
    channel: PayChannel = PayChannel.NATIVE
    openid: str | None = Field(default=None, max_length=64)
    provider: str | None = Field(default=None, max_length=16)


class PaymentOut(BaseModel):
    id: str
    order_id: str
    provider: str
    channel: str
    amount_fen: int
    status: str
    code_url: str | None
    jsapi_params: dict[str, str] | None = None
    created_at: datetime
    paid_at: datetime | None


@router.post("/orders/{order_id}/payments", status_code=status.HTTP_201_CREATED, response_model=PaymentOut)
async def start_payment(
    order_id: str, body: PaymentStartIn, services: ServicesDep, account: AccountDep
) -> PaymentOut:
    """A payment of an order awaiting payment: a code_url to show as QR / link, or JSAPI params."""
    async with services.db.session() as session:
        order = await get_order(session, account.id, order_id)
        payment = await payments.start_payment(
            session,
            services,
            order,
            channel=body.channel,
            payer_openid=body.openid,
            provider_name=body.provider,
        )
        out = PaymentOut.model_validate(payment, from_attributes=True)
        out.jsapi_params = payments.jsapi_params_of(session, payment)
    return out


@router.get("/payments/{payment_id}", response_model=PaymentOut)
async def get_payment(payment_id: str, services: ServicesDep, account: AccountDep) -> PaymentOut:
    async with services.db.session() as session:
        payment = await payments.get_payment(session, payment_id)
        if payment.account_id != account.id:
            raise NotFound("payment not found", payment_id=payment_id)
        return PaymentOut.model_validate(payment, from_attributes=True)


@public_router.post("/v1/payments/notify/{provider}", include_in_schema=True)
async def notify(provider: str, request: Request, services: ServicesDep) -> Response:
    """Provider notification, answered in WeChat Pay v3's format (204 / ``{"code": "FAIL"}``)."""
    body = await request.body()
    try:
        await process_notification(services, provider, request.headers, body)
    except PlatformError as exc:
        log.warning("payment notification from %s refused: %s %s", provider, exc.code, exc.details)
        return JSONResponse(
            status_code=exc.status_code, content={"code": "FAIL", "message": exc.message, "reason": exc.code}
        )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _sandbox(services: ServicesDep) -> SandboxProvider:
    provider = services.payment_providers.get("sandbox")
    if not isinstance(provider, SandboxProvider):
        raise NotFound("the sandbox payment provider is not enabled")
    return provider


async def _payment_and_order(services: ServicesDep, payment_id: str) -> tuple[payments.Payment, Order]:
    async with services.db.session() as session:
        payment = await session.get(payments.Payment, payment_id)
        order = await session.get(Order, payment.order_id) if payment is not None else None
        if payment is None or order is None or payment.provider != "sandbox":
            raise NotFound("payment not found", payment_id=payment_id)
        return payment, order


@sandbox_pages.get("/pay/{payment_id}", response_class=HTMLResponse, include_in_schema=False)
async def pay_page(payment_id: str, services: ServicesDep) -> HTMLResponse:
    _sandbox(services)
    payment, order = await _payment_and_order(services, payment_id)
    html = render_pay_page(
        payment_id=payment.id,
        state=payment.status,
        amount_fen=payment.amount_fen,
        order_id=order_code(order.id),
        order_type=order.type,
        years=order.years,
        service_name=services.settings.operator_service_name,
    )
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


@sandbox_pages.get("/pay/{payment_id}/qr.png", include_in_schema=False)
async def pay_qr(payment_id: str, services: ServicesDep) -> Response:
    sandbox = _sandbox(services)
    payment, _order = await _payment_and_order(services, payment_id)
    png = await asyncio.to_thread(payment_qr_png, payment.code_url or sandbox.pay_url(payment.id))
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


@sandbox_pages.post("/pay/{payment_id}", include_in_schema=False)
async def pay(payment_id: str, services: ServicesDep) -> RedirectResponse:
    """The sandbox "pay" button: the fake gateway records the trade and notifies the platform.

    The notification is signed and encrypted like WeChat Pay's and goes through the same
    ``process_notification`` as ``POST /v1/payments/notify/sandbox``; the button itself decides
    nothing. A refused notification leaves the payment pending, which the page then shows.
    """
    sandbox = _sandbox(services)
    headers, body = await sandbox.pay(payment_id)
    try:
        await process_notification(services, sandbox.name, headers, body)
    except PlatformError as exc:
        log.warning("sandbox notification refused: %s %s", exc.code, exc.details)
    return RedirectResponse(f"{payment_id}", status_code=status.HTTP_303_SEE_OTHER)
