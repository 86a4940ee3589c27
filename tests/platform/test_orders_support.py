"""Shared steps of the order, payment and document tests: what an applicant and staff do.

Everything goes through the HTTP API (the ``api`` fixture), as the bot and the console would.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlalchemy import select

from seal_platform.events import PlatformEvent
from seal_platform.services import PlatformServices
from seal_platform.staff import StaffRole
from seal_platform.validation import credit_code_check_char
from tests.fixtures.seals import StaffCall, produced_seal
from tests.fixtures.staff import add_staff
from tests.platform.conftest import MakeAccount
from tests.platform.conftest import TestAccount as Applicant

USCC = "91110000600037341L"
LEGAL_REP_ID = "11010519491231002X"
COMPANY = {
    "name": "北京示例科技有限公司",
    "uscc": USCC,
    "legal_rep_name": "李四",
    "legal_rep_id": LEGAL_REP_ID,
}
ADDRESS = {
    "recipient": "王五",
    "phone": "13800138000",
    "province": "广东省",
    "city": "广州市",
    "district": "天河区",
    "address": "天河路 100 号 20 楼",
}
STAFF_PASSWORD = "staff-password-1"


def png_bytes(size: tuple[int, int] = (40, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


async def upload(api: httpx.AsyncClient, account: Applicant, kind: str, data: bytes | None = None) -> str:
    response = await api.post(
        "/v1/documents",
        data={"kind": kind},
        files={"file": ("scan.png", data if data is not None else png_bytes(), "image/png")},
        headers=account.headers,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def enterprise_documents(api: httpx.AsyncClient, account: Applicant) -> dict[str, str]:
    return {
        "business_licence": await upload(api, account, "business_licence"),
        "impression_form_enterprise": await upload(api, account, "impression_form"),
    }


async def create_order(
    api: httpx.AsyncClient, account: Applicant, body: dict[str, Any], *, key: str | None = None
) -> dict[str, Any]:
    headers = {**account.headers, **({"Idempotency-Key": key} if key else {})}
    response = await api.post("/v1/orders", json=body, headers=headers)
    assert response.status_code == 201, response.text  # a new order; a replayed key answers 200
    return dict(response.json())


async def submit(api: httpx.AsyncClient, account: Applicant, order_id: str) -> dict[str, Any]:
    response = await api.post(f"/v1/orders/{order_id}/submit", headers=account.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def pay_in_sandbox(api: httpx.AsyncClient, account: Applicant, order_id: str) -> dict[str, Any]:
    """Start a payment and press "pay" on the sandbox page, as the payer's browser would."""
    started = await api.post(f"/v1/orders/{order_id}/payments", json={}, headers=account.headers)
    assert started.status_code == 201, started.text
    payment_id = started.json()["id"]
    pressed = await api.post(f"/pay/{payment_id}")
    assert pressed.status_code == 303, pressed.text
    order = await api.get(f"/v1/orders/{order_id}", headers=account.headers)
    return dict(order.json())


def another_company(number: int) -> dict[str, str]:
    """A company of its own (a valid credit code per ``number``): a company has one seal of a
    kind, so tests that need several enterprise orders at once give each its company."""
    base = f"911100006000{number:05d}"
    return {**COMPANY, "uscc": base + credit_code_check_char(base)}


async def new_enterprise_order(
    api: httpx.AsyncClient, account: Applicant, *, years: int = 1, company: dict[str, str] | None = None
) -> dict[str, Any]:
    documents = await enterprise_documents(api, account)
    body = {
        "type": "enterprise_seal",
        "company": company or COMPANY,
        "years": years,
        "mailing_address": ADDRESS,
        "documents": documents,
    }
    return await create_order(api, account, body)


async def paid_enterprise_order(
    api: httpx.AsyncClient, account: Applicant, *, years: int = 1, company: dict[str, str] | None = None
) -> dict[str, Any]:
    order = await new_enterprise_order(api, account, years=years, company=company)
    await submit(api, account, order["id"])
    return await pay_in_sandbox(api, account, order["id"])


@dataclass(frozen=True)
class Staff:
    headers: dict[str, str]
    username: str


async def make_staff(
    api: httpx.AsyncClient, services: PlatformServices, username: str, roles: list[StaffRole]
) -> Staff:
    await add_staff(services, username, roles, password=STAFF_PASSWORD)
    response = await api.post("/v1/staff/sessions", json={"username": username, "password": STAFF_PASSWORD})
    assert response.status_code == 201, response.text
    return Staff(headers={"X-Staff-Token": response.json()["token"]}, username=username)


@pytest.fixture
async def admin(api: httpx.AsyncClient, platform_services: PlatformServices) -> Staff:
    return await make_staff(api, platform_services, "admin", [StaffRole.ADMIN])


async def staff_post(
    api: httpx.AsyncClient, staff: Staff, path: str, body: dict[str, Any] | None = None
) -> httpx.Response:
    return await api.post(f"/v1/staff{path}", json=body or {}, headers=staff.headers)


def staff_caller(api: httpx.AsyncClient, staff: Staff) -> StaffCall:
    """``staff``'s calls for the shared seal helper: each must answer 200."""

    async def call(path: str, body: dict[str, Any] | None = None, /) -> dict[str, Any]:
        response = await staff_post(api, staff, path, body)
        assert response.status_code == 200, response.text
        return dict(response.json())

    return call


async def active_seal(
    api: httpx.AsyncClient, account: Applicant, staff: Staff, *, order_type: str = "enterprise_seal"
) -> dict[str, Any]:
    """Run a new-seal order from draft to shipped and return the active seal."""
    return await produced_seal(api, account.headers, staff_caller(api, staff))


async def event_types(services: PlatformServices, account_id: str) -> list[str]:
    async with services.db.session() as session:
        rows = await session.scalars(
            select(PlatformEvent).where(PlatformEvent.account_id == account_id).order_by(PlatformEvent.id)
        )
        # Account events (registration, real-name) belong to the accounts tests.
        return [row.type for row in rows if not row.type.startswith("account.")]


async def events_of(services: PlatformServices, account_id: str, type_: str) -> list[dict[str, Any]]:
    async with services.db.session() as session:
        rows = await session.scalars(
            select(PlatformEvent)
            .where(PlatformEvent.account_id == account_id, PlatformEvent.type == type_)
            .order_by(PlatformEvent.id)
        )
        return [dict(row.data) for row in rows]


DAY = timedelta(days=1)


async def log_in_again(api: httpx.AsyncClient, account: Applicant) -> Applicant:
    """A fresh token, for tests that move the clock past the token's lifetime."""
    response = await api.post("/v1/sessions", json={"phone": account.phone, "password": account.password})
    assert response.status_code == 201, response.text
    return replace(account, token=response.json()["token"])


__all__ = ["MakeAccount", "admin"]
