"""Orders endpoints: create (idempotently), edit, submit, pay, cancel, resubmit, confirm a
cancellation, and the UKey step of renewal, change and unlock."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from platform_client.base import SubAPI
from platform_client.models import PlatformModel

OrderType = Literal[
    "enterprise_seal", "personal_seal", "bundle", "renewal", "change", "reissue", "unlock", "cancellation"
]
PayChannel = Literal["native", "jsapi"]


class Order(PlatformModel):
    id: str
    code: str  # the order number people see and say; ``id`` stays internal
    type: str
    status: str
    company_id: str | None = None
    seal_id: str | None = None
    years: int | None = None
    amount_fen: int
    mailing_address: dict[str, Any] | None = None
    documents: dict[str, str] = Field(default_factory=dict)
    details: dict[str, Any] = Field(default_factory=dict)
    result: dict[str, Any] = Field(default_factory=dict)
    reject_reason: str | None = None
    waybill: str | None = None
    tracking_url: str | None = None
    payment_deadline: datetime | None = None
    paid_at: datetime | None = None
    created_at: datetime
    updated_at: datetime


class OrderTransition(PlatformModel):
    from_status: str
    to_status: str
    actor: str
    reason: str | None = None
    at: datetime


class Payment(PlatformModel):
    id: str
    order_id: str
    provider: str
    channel: str
    amount_fen: int
    status: str
    code_url: str | None = None
    jsapi_params: dict[str, str] | None = None
    created_at: datetime
    paid_at: datetime | None = None


class PriceList(PlatformModel):
    currency: str
    validity_years_options: list[int]
    per_year_fen: dict[str, int]
    flat_fen: dict[str, int]


class UkeyJob(PlatformModel):
    order_id: str
    order_type: str
    seal_id: str
    key_serial: str | None = None
    certificate_issued: bool
    reset_pin_to: str | None = None


class CertifiedKey(PlatformModel):
    certificate_pem: str
    certificate_serial: str
    valid_from: datetime
    valid_to: datetime
    impression_document_id: str
    seseal_document_id: str


class OrdersAPI(SubAPI):
    async def prices(self) -> PriceList:
        return self._parse(PriceList, await self._request("GET", "/v1/prices"))

    async def create(self, token: str, order: dict[str, Any], *, idempotency_key: str | None = None) -> Order:
        """A draft order. Pass an ``idempotency_key`` so a retried call cannot create two."""
        data = await self._request(
            "POST", "/v1/orders", json=order, account_token=token, idempotency_key=idempotency_key
        )
        return self._parse(Order, data)

    async def list_orders(self, token: str, *, status: str | None = None) -> list[Order]:
        data = await self._request("GET", "/v1/orders", params={"status": status}, account_token=token)
        return [self._parse(Order, item) for item in data]

    async def get(self, token: str, order_id: str) -> Order:
        return self._parse(Order, await self._request("GET", f"/v1/orders/{order_id}", account_token=token))

    async def update(self, token: str, order_id: str, changes: dict[str, Any]) -> Order:
        data = await self._request("PATCH", f"/v1/orders/{order_id}", json=changes, account_token=token)
        return self._parse(Order, data)

    async def _action(self, token: str, order_id: str, action: str, body: Any = None) -> Order:
        data = await self._request("POST", f"/v1/orders/{order_id}/{action}", json=body, account_token=token)
        return self._parse(Order, data)

    async def submit(self, token: str, order_id: str) -> Order:
        return await self._action(token, order_id, "submit")

    async def cancel(self, token: str, order_id: str) -> Order:
        return await self._action(token, order_id, "cancel")

    async def resubmit(self, token: str, order_id: str, changes: dict[str, Any] | None = None) -> Order:
        return await self._action(token, order_id, "resubmit", changes or {})

    async def abandon_ukey_step(self, token: str, order_id: str) -> Order:
        """Give up a paid order's UKey step: the order is cancelled and its payment refunded."""
        return await self._action(token, order_id, "abandon-ukey-step")

    async def confirm_cancellation(self, token: str, order_id: str, sms_code: str) -> Order:
        return await self._action(token, order_id, "confirm-cancellation", {"sms_code": sms_code})

    async def history(self, token: str, order_id: str) -> list[OrderTransition]:
        data = await self._request("GET", f"/v1/orders/{order_id}/history", account_token=token)
        return [self._parse(OrderTransition, item) for item in data]

    async def start_payment(
        self, token: str, order_id: str, *, channel: PayChannel = "native", openid: str | None = None
    ) -> Payment:
        data = await self._request(
            "POST",
            f"/v1/orders/{order_id}/payments",
            json={"channel": channel, "openid": openid},
            account_token=token,
        )
        return self._parse(Payment, data)

    async def payment(self, token: str, payment_id: str) -> Payment:
        return self._parse(
            Payment, await self._request("GET", f"/v1/payments/{payment_id}", account_token=token)
        )

    async def ukey_job(self, token: str, order_id: str) -> UkeyJob:
        return self._parse(
            UkeyJob, await self._request("GET", f"/v1/orders/{order_id}/ukey-job", account_token=token)
        )

    async def certify_key(
        self, token: str, order_id: str, *, key_serial: str, public_key_pem: str
    ) -> CertifiedKey:
        data = await self._request(
            "POST",
            f"/v1/orders/{order_id}/ukey-job/certificate",
            json={"key_serial": key_serial, "public_key_pem": public_key_pem},
            account_token=token,
        )
        return self._parse(CertifiedKey, data)

    async def so_pin(self, token: str, order_id: str) -> str:
        """The SO PIN for this paid unlock job: hand it to the bridge, never to a chat."""
        data = await self._request("GET", f"/v1/orders/{order_id}/ukey-job/so-pin", account_token=token)
        return str(data["so_pin"])

    async def complete_ukey_job(self, token: str, order_id: str, *, key_serial: str) -> Order:
        return await self._action(token, order_id, "ukey-job/complete", {"key_serial": key_serial})
