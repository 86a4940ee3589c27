"""Fixtures of the console tests: the platform fixtures, staff members, and a console client
that logs in and posts forms the way a browser does (cookies, CSRF token from the page)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from seal_platform.services import PlatformServices
from tests.console.support import STAFF_PASSWORD, ConsoleClient, order_under_review
from tests.fixtures.staff import add_staff
from tests.platform.conftest import (
    MakeAccount,
    api,
    clock,
    console_sms,
    make_account,
    platform_app,
    platform_database,
    platform_services,
    platform_settings,
)

__all__ = [
    "api",
    "clock",
    "console_sms",
    "make_account",
    "platform_app",
    "platform_database",
    "platform_services",
    "platform_settings",
]

StaffFactory = Callable[..., Awaitable[ConsoleClient]]


@pytest.fixture
async def console_for(
    platform_app: FastAPI, platform_services: PlatformServices
) -> AsyncIterator[StaffFactory]:
    """``await console_for("name", ["reviewer"])``: a staff member, logged in to the console."""
    clients: list[ConsoleClient] = []

    async def make(
        username: str, roles: list[str], *, ip: str = "127.0.0.1", login: bool = True
    ) -> ConsoleClient:
        await add_staff(platform_services, username, roles, password=STAFF_PASSWORD)
        client = ConsoleClient(
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=platform_app, client=(ip, 50000)),
                base_url="http://platform.test",
            )
        )
        clients.append(client)
        if login:
            await client.login(username, STAFF_PASSWORD)
        return client

    yield make
    for client in clients:
        await client.http.aclose()


@pytest.fixture
def anonymous(platform_app: FastAPI) -> Callable[..., ConsoleClient]:
    """A console client with no staff member behind it (``ip`` picks the client address)."""

    def make(ip: str = "127.0.0.1") -> ConsoleClient:
        return ConsoleClient(
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=platform_app, client=(ip, 50001)),
                base_url="http://platform.test",
            )
        )

    return make


@pytest.fixture
async def order(api: httpx.AsyncClient, make_account: MakeAccount) -> dict[str, Any]:
    """An applicant's enterprise seal order, paid and waiting for review (its owner's account
    at ``_account``)."""
    return await order_under_review(api, make_account)
