"""Seals and companies endpoints (what the bot lists under 证章信息)."""

from __future__ import annotations

from datetime import datetime

from platform_client.documents import BinaryAPI
from platform_client.models import PlatformModel


class Seal(PlatformModel):
    id: str
    company_id: str
    kind: str
    status: str
    holder_name: str
    seal_code: str
    certificate_serial: str | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    key_serial: str | None = None
    impression_document_id: str | None = None
    seseal_document_id: str | None = None
    renewal_opens_at: datetime | None = None
    renewable_now: bool = False


class Company(PlatformModel):
    id: str
    name: str
    uscc: str
    legal_rep_name: str
    legal_rep_id_masked: str
    created_at: datetime


class SealsAPI(BinaryAPI):
    async def list_seals(self, token: str) -> list[Seal]:
        data = await self._request("GET", "/v1/seals", account_token=token)
        return [self._parse(Seal, item) for item in data]

    async def get(self, token: str, seal_id: str) -> Seal:
        return self._parse(Seal, await self._request("GET", f"/v1/seals/{seal_id}", account_token=token))

    async def impression_png(self, token: str, seal_id: str) -> bytes:
        return (
            await self._transport.call_raw("GET", f"/v1/seals/{seal_id}/impression.png", account_token=token)
        ).content

    async def companies(self, token: str) -> list[Company]:
        data = await self._request("GET", "/v1/companies", account_token=token)
        return [self._parse(Company, item) for item in data]

    async def company(self, token: str, company_id: str) -> Company:
        return self._parse(
            Company, await self._request("GET", f"/v1/companies/{company_id}", account_token=token)
        )
