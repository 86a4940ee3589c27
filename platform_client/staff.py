"""Staff endpoints (``/v1/staff``): login, the order queue, review, production, shipping,
invoices, document preview and the audit log. Calls carry the staff token, not an account's."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from platform_client.documents import BinaryAPI
from platform_client.invoices import Invoice
from platform_client.models import PlatformModel
from platform_client.orders import Order

STAFF_TOKEN_HEADER = "X-Staff-Token"  # a header name, not a secret


class StaffSession(PlatformModel):
    token: str
    username: str
    roles: list[str]


class StaffOrder(Order):
    account_id: str
    history: list[dict[str, Any]] = Field(default_factory=list)


class AuditEntry(PlatformModel):
    id: int
    actor: str
    action: str
    object_type: str
    object_id: str
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    at: datetime


class StaffAPI(BinaryAPI):
    async def _staff(self, staff_token: str, method: str, path: str, body: Any = None, **params: str) -> Any:
        response = await self._transport.call_raw(
            method,
            f"/v1/staff{path}",
            headers={STAFF_TOKEN_HEADER: staff_token},
            json=body,
            params={k: v for k, v in params.items() if v} or None,
        )
        return response.json()

    async def login(self, username: str, password: str) -> StaffSession:
        data = await self._request(
            "POST", "/v1/staff/sessions", json={"username": username, "password": password}
        )
        return self._parse(StaffSession, data)

    async def orders(self, staff_token: str, *, status: str = "") -> list[StaffOrder]:
        data = await self._staff(staff_token, "GET", "/orders", status=status)
        return [self._parse(StaffOrder, item) for item in data]

    async def order(self, staff_token: str, order_id: str) -> StaffOrder:
        return self._parse(StaffOrder, await self._staff(staff_token, "GET", f"/orders/{order_id}"))

    async def approve(self, staff_token: str, order_id: str) -> StaffOrder:
        return self._parse(StaffOrder, await self._staff(staff_token, "POST", f"/orders/{order_id}/approve"))

    async def reject(self, staff_token: str, order_id: str, reason: str) -> StaffOrder:
        data = await self._staff(staff_token, "POST", f"/orders/{order_id}/reject", {"reason": reason})
        return self._parse(StaffOrder, data)

    async def produce(self, staff_token: str, order_id: str) -> StaffOrder:
        return self._parse(StaffOrder, await self._staff(staff_token, "POST", f"/orders/{order_id}/produce"))

    async def ship(self, staff_token: str, order_id: str, waybill: str) -> StaffOrder:
        data = await self._staff(staff_token, "POST", f"/orders/{order_id}/ship", {"waybill": waybill})
        return self._parse(StaffOrder, data)

    async def complete(self, staff_token: str, order_id: str) -> StaffOrder:
        return self._parse(StaffOrder, await self._staff(staff_token, "POST", f"/orders/{order_id}/complete"))

    async def preview_document(self, staff_token: str, document_id: str) -> bytes:
        response = await self._transport.call_raw(
            "GET", f"/v1/staff/documents/{document_id}/content", headers={STAFF_TOKEN_HEADER: staff_token}
        )
        return response.content

    async def invoices(self, staff_token: str, *, status: str = "") -> list[Invoice]:
        return [
            self._parse(Invoice, i) for i in await self._staff(staff_token, "GET", "/invoices", status=status)
        ]

    async def issue_invoice(self, staff_token: str, invoice_id: str) -> Invoice:
        return self._parse(Invoice, await self._staff(staff_token, "POST", f"/invoices/{invoice_id}/issue"))

    async def audit(self, staff_token: str, *, object_id: str = "") -> list[AuditEntry]:
        return [
            self._parse(AuditEntry, e)
            for e in await self._staff(staff_token, "GET", "/audit", object_id=object_id)
        ]
