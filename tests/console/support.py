"""A console client for tests: keeps the cookies, reads the CSRF token off the last page and
sends it with each form, as a browser would; and the applicant steps that fill the queues."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import select

from seal_platform.services import PlatformServices
from seal_platform.staff_actions import AuditEntry
from tests.platform.conftest import MakeAccount
from tests.platform.test_orders_support import COMPANY, USCC, paid_enterprise_order

STAFF_PASSWORD = "console-pass-123"
# Files of a multipart form, as httpx takes them: (field, (filename, bytes, content type)).
Files = list[tuple[str, tuple[str, bytes, str]]]
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_FLASH = re.compile(r'id="flash"[^>]*>([^<]*)<')


@dataclass
class ConsoleClient:
    http: httpx.AsyncClient
    # Where the console is: ``/platform/console`` when the platform is mounted in the bot.
    prefix: str = "/console"
    csrf_token: str | None = None
    last: httpx.Response | None = field(default=None, repr=False)

    def _remember(self, response: httpx.Response) -> httpx.Response:
        self.last = response
        found = (
            _CSRF.search(response.text)
            if response.headers.get("content-type", "").startswith("text/html")
            else None
        )
        if found:
            self.csrf_token = found.group(1)
        return response

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return self._remember(await self.http.get(f"{self.prefix}{path}", params=params or None))

    async def post(
        self,
        path: str,
        data: dict[str, Any] | None = None,
        *,
        csrf: bool = True,
        files: Files | None = None,
    ) -> httpx.Response:
        """POST a form (multipart with ``files``); with ``csrf`` the token of the last page goes
        along (loaded if needed)."""
        form = dict(data or {})
        if csrf:
            if self.csrf_token is None:
                await self.get("/")
            form["csrf_token"] = self.csrf_token
        return self._remember(await self.http.post(f"{self.prefix}{path}", data=form, files=files))

    async def act(
        self,
        path: str,
        data: dict[str, Any] | None = None,
        *,
        files: Files | None = None,
    ) -> str:
        """POST an action, follow its redirect and return the message the next page shows."""
        response = await self.post(path, data, files=files)
        assert response.status_code == 303, (response.status_code, response.text[:500])
        page = await self.http.get(response.headers["location"])
        self._remember(page)
        assert page.status_code == 200, page.text[:500]
        found = _FLASH.search(page.text)
        return found.group(1).strip() if found else ""

    async def produce(self, order_id: str) -> tuple[str, dict[str, Any]]:
        """Click 制作 and follow the run the way the page does (polling its progress until it
        has finished); the click's message and the run's last progress view."""
        message = await self.act(f"/orders/{order_id}/produce")
        async with asyncio.timeout(30):
            while True:
                view = (await self.http.get(f"{self.prefix}/orders/{order_id}/production-progress")).json()
                if not view["running"]:
                    return message, dict(view)
                await asyncio.sleep(0.05)

    async def login(self, username: str, password: str) -> httpx.Response:
        form = await self.get("/login")
        assert form.status_code == 200
        response = await self.post("/login", {"username": username, "password": password})
        if response.status_code == 303:
            self.csrf_token = None  # the session's own token replaces the login page's
        return response


async def order_under_review(
    api: httpx.AsyncClient, make_account: MakeAccount, company: dict[str, str] | None = None
) -> dict[str, Any]:
    """An applicant's enterprise seal order, paid and waiting for review."""
    account = await make_account(realname=True)
    # a second order at once needs another company: a company has one open order per seal kind
    order = await paid_enterprise_order(api, account, company=company)
    assert order["status"] == "under_review"
    return {**order, "_account": account}


async def invoice_requested(api: httpx.AsyncClient, make_account: MakeAccount) -> tuple[dict[str, Any], str]:
    """An order under review whose applicant asked for a company invoice: the order and the
    invoice's id."""
    order = await order_under_review(api, make_account)
    requested = await api.post(
        f"/v1/orders/{order['id']}/invoice",
        json={"title": COMPANY["name"], "tax_number": USCC},
        headers=order["_account"].headers,
    )
    assert requested.status_code in (200, 201), requested.text
    return order, str(requested.json()["id"])


async def audit_entries(services: PlatformServices, **where: str) -> list[AuditEntry]:
    """The audit log's entries whose columns have the values given (``object_id=..., action=...``),
    oldest first."""
    async with services.db.session() as session:
        rows = await session.scalars(
            select(AuditEntry)
            .where(*(getattr(AuditEntry, column) == value for column, value in where.items()))
            .order_by(AuditEntry.id)
        )
        return list(rows)
