"""Invoice endpoints: request the e-invoice of a paid order, then read and download it."""

from __future__ import annotations

from datetime import datetime

from platform_client.documents import BinaryAPI
from platform_client.models import PlatformModel


class Invoice(PlatformModel):
    id: str
    order_id: str
    order_code: str  # the order's number as people see it
    title: str
    tax_number: str | None = None
    email: str
    amount_fen: int
    status: str
    invoice_number: str | None = None
    document_id: str | None = None
    requested_at: datetime
    issued_at: datetime | None = None


class InvoicesAPI(BinaryAPI):
    async def options(self) -> bool:
        """Whether the platform e-mails issued invoices (it has SMTP settings)."""
        data = await self._request("GET", "/v1/invoice-options")
        return bool(data.get("email_delivery")) if isinstance(data, dict) else False

    async def request(
        self,
        token: str,
        order_id: str,
        *,
        title: str,
        email: str | None = None,
        tax_number: str | None = None,
    ) -> Invoice:
        data = await self._request(
            "POST",
            f"/v1/orders/{order_id}/invoice",
            json={"title": title, "email": email, "tax_number": tax_number},
            account_token=token,
        )
        return self._parse(Invoice, data)

    async def list_invoices(self, token: str) -> list[Invoice]:
        return [
            self._parse(Invoice, item)
            for item in await self._request("GET", "/v1/invoices", account_token=token)
        ]

    async def get(self, token: str, invoice_id: str) -> Invoice:
        return self._parse(
            Invoice, await self._request("GET", f"/v1/invoices/{invoice_id}", account_token=token)
        )

    async def pdf(self, token: str, invoice_id: str) -> bytes:
        return (
            await self._transport.call_raw("GET", f"/v1/invoices/{invoice_id}/pdf", account_token=token)
        ).content
