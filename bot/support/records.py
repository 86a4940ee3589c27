"""The user's orders and seals, as the staff view shows them.

They are read with the conversation's own account token (from its logged-in session), so
staff see exactly what the user may see, through the same platform API the bot uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from platform_client.base import PlatformTransportClient, SubAPI
from platform_client.errors import NotAuthenticated, PlatformClientError
from platform_client.models import PlatformModel


class OrderSummary(PlatformModel):
    id: str
    type: str
    status: str
    amount_fen: int
    reject_reason: str | None = None
    waybill: str | None = None
    created_at: datetime
    updated_at: datetime


class SealSummary(PlatformModel):
    id: str
    kind: str
    status: str
    holder_name: str
    valid_to: datetime | None = None
    key_serial: str | None = None


@dataclass(frozen=True)
class CustomerRecordsView:
    orders: list[OrderSummary] = field(default_factory=list)
    seals: list[SealSummary] = field(default_factory=list)
    # why nothing could be read: "not_logged_in", "session_expired", "platform_unavailable"
    problem: str | None = None


class CustomerRecords(Protocol):
    async def for_account(self, account_token: str | None) -> CustomerRecordsView: ...


class AccountRecordsAPI(SubAPI):
    """``GET /v1/orders`` and ``GET /v1/seals`` of one account."""

    async def orders(self, token: str) -> list[OrderSummary]:
        data = await self._request("GET", "/v1/orders", account_token=token)
        return [self._parse(OrderSummary, item) for item in data or []]

    async def seals(self, token: str) -> list[SealSummary]:
        data = await self._request("GET", "/v1/seals", account_token=token)
        return [self._parse(SealSummary, item) for item in data or []]


class PlatformCustomerRecords:
    def __init__(self, platform: PlatformTransportClient) -> None:
        self._api = AccountRecordsAPI(platform)

    async def for_account(self, account_token: str | None) -> CustomerRecordsView:
        if not account_token:
            return CustomerRecordsView(problem="not_logged_in")
        try:
            orders = await self._api.orders(account_token)
            seals = await self._api.seals(account_token)
        except NotAuthenticated:
            return CustomerRecordsView(problem="session_expired")
        except PlatformClientError:
            return CustomerRecordsView(problem="platform_unavailable")
        return CustomerRecordsView(orders=orders, seals=seals)
