"""Another account's objects look exactly like missing ones, on every account-scoped endpoint.

The table below lists each route that takes an object id; ``test_every_id_route_is_covered``
compares it with the app's real routes, so a new endpoint without a row here fails the suite.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.platform.conftest import MakeAccount
from tests.platform.conftest import TestAccount as Applicant
from tests.platform.test_orders_support import (
    COMPANY,
    Staff,
    active_seal,
    admin,
    another_company,
    new_enterprise_order,
    staff_post,
    submit,
)

__all__ = ["admin"]

ID_PARAMS = {"order_id", "document_id", "seal_id", "company_id", "invoice_id", "payment_id"}
KEY_PEM = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n"

# (method, path) -> JSON body that passes schema validation, so that only ownership can refuse.
ROUTES: dict[tuple[str, str], dict[str, Any] | None] = {
    ("GET", "/v1/orders/{order_id}"): None,
    ("PATCH", "/v1/orders/{order_id}"): {},
    ("POST", "/v1/orders/{order_id}/submit"): None,
    ("POST", "/v1/orders/{order_id}/cancel"): None,
    ("POST", "/v1/orders/{order_id}/resubmit"): {},
    ("POST", "/v1/orders/{order_id}/confirm-cancellation"): {"sms_code": "123456"},
    ("POST", "/v1/orders/{order_id}/abandon-ukey-step"): None,
    ("POST", "/v1/orders/{order_id}/withdraw"): None,
    ("GET", "/v1/orders/{order_id}/history"): None,
    ("POST", "/v1/orders/{order_id}/invoice"): {"title": "某某公司", "email": "finance@example.cn"},
    ("GET", "/v1/invoices/{invoice_id}"): None,
    ("GET", "/v1/invoices/{invoice_id}/pdf"): None,
    ("GET", "/v1/orders/{order_id}/ukey-job"): None,
    ("POST", "/v1/orders/{order_id}/ukey-job/certificate"): {"key_serial": "UK1", "public_key_pem": KEY_PEM},
    ("GET", "/v1/orders/{order_id}/ukey-job/so-pin"): None,
    ("POST", "/v1/orders/{order_id}/ukey-job/complete"): {"key_serial": "UK1"},
    ("GET", "/v1/orders/{order_id}/impression-form.pdf"): None,
    ("POST", "/v1/orders/{order_id}/payments"): {},
    ("GET", "/v1/payments/{payment_id}"): None,
    ("GET", "/v1/documents/{document_id}"): None,
    ("GET", "/v1/documents/{document_id}/content"): None,
    ("GET", "/v1/seals/{seal_id}"): None,
    ("GET", "/v1/seals/{seal_id}/impression.png"): None,
    ("GET", "/v1/companies/{company_id}"): None,
}


@dataclass(frozen=True)
class OwnedObjects:
    owner: Applicant
    ids: dict[str, str]


@pytest.fixture
async def owned(api: httpx.AsyncClient, make_account: MakeAccount, admin: Staff) -> OwnedObjects:
    """An account with one of everything: seal, company, paid order, payment, invoice, document."""
    owner = await make_account(realname=True)
    seal = await active_seal(api, owner, admin)
    order = (await api.get("/v1/orders", headers=owner.headers)).json()[0]
    invoice = await api.post(
        f"/v1/orders/{order['id']}/invoice",
        json={"title": "北京示例科技有限公司", "email": "a@b.cn"},
        headers=owner.headers,
    )
    assert invoice.status_code == 201, invoice.text
    await api.post(f"/v1/staff/invoices/{invoice.json()['id']}/issue", headers=admin.headers)
    # another company: this one has its seal already (one seal of a kind per company)
    unpaid = await new_enterprise_order(api, owner, company=another_company(2))
    await submit(api, owner, unpaid["id"])
    payment = await api.post(f"/v1/orders/{unpaid['id']}/payments", json={}, headers=owner.headers)
    return OwnedObjects(
        owner=owner,
        ids={
            "order_id": order["id"],
            "document_id": order["documents"]["business_licence"],
            "seal_id": seal["id"],
            "company_id": seal["company_id"],
            "invoice_id": invoice.json()["id"],
            "payment_id": payment.json()["id"],
        },
    )


def _fill(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], path)


def id_routes(app: FastAPI) -> set[tuple[str, str]]:
    """Routes that act for an account (AccountToken security) on an object named by id."""
    found = set()
    for path, operations in app.openapi()["paths"].items():
        if not ID_PARAMS & set(re.findall(r"\{(\w+)\}", path)):
            continue
        for method, operation in operations.items():
            schemes = {name for requirement in operation.get("security", []) for name in requirement}
            if "AccountToken" in schemes:
                found.add((method.upper(), path))
    return found


def test_every_id_route_is_covered(platform_app: FastAPI) -> None:
    assert id_routes(platform_app) == set(ROUTES)


@pytest.mark.parametrize(("method", "path"), sorted(ROUTES))
async def test_another_accounts_object_is_not_found(
    api: httpx.AsyncClient, make_account: MakeAccount, owned: OwnedObjects, method: str, path: str
) -> None:
    intruder = await make_account(realname=True)
    url = _fill(path, owned.ids)
    response = await api.request(method, url, json=ROUTES[(method, path)], headers=intruder.headers)
    assert response.status_code == 404, response.text
    # Exactly what a missing object looks like.
    missing = await api.request(
        method,
        _fill(path, dict.fromkeys(owned.ids, "00000000-0000-0000-0000-000000000000")),
        json=ROUTES[(method, path)],
        headers=intruder.headers,
    )
    assert missing.status_code == 404
    assert response.json()["code"] == missing.json()["code"]


@pytest.mark.parametrize(("method", "path"), sorted(p for p in ROUTES if p[0] == "GET"))
async def test_the_owner_reaches_the_same_object(
    api: httpx.AsyncClient, owned: OwnedObjects, method: str, path: str
) -> None:
    response = await api.request(method, _fill(path, owned.ids), headers=owned.owner.headers)
    assert response.status_code != 404, response.text


async def test_lists_show_only_the_callers_objects(
    api: httpx.AsyncClient, make_account: MakeAccount, owned: OwnedObjects
) -> None:
    intruder = await make_account(realname=True)
    for path in ("/v1/orders", "/v1/seals", "/v1/companies", "/v1/invoices"):
        assert (await api.get(path, headers=intruder.headers)).json() == [], path
        assert (await api.get(path, headers=owned.owner.headers)).json() != [], path


@pytest.mark.parametrize("order_type", ["renewal", "change", "reissue", "unlock", "cancellation"])
async def test_orders_on_another_accounts_seal_are_not_found(
    api: httpx.AsyncClient, make_account: MakeAccount, owned: OwnedObjects, order_type: str
) -> None:
    intruder = await make_account(realname=True)
    response = await api.post(
        "/v1/orders",
        json={"type": order_type, "seal_id": owned.ids["seal_id"], "years": 1},
        headers=intruder.headers,
    )
    assert response.status_code == 404


async def test_order_for_another_accounts_company_is_not_found(
    api: httpx.AsyncClient, make_account: MakeAccount, owned: OwnedObjects
) -> None:
    intruder = await make_account(realname=True)
    response = await api.post(
        "/v1/orders",
        json={"type": "enterprise_seal", "company_id": owned.ids["company_id"], "years": 1},
        headers=intruder.headers,
    )
    assert response.status_code == 404
    # Typing the same company in gives no access to theirs: the company has its seal, so the
    # order is refused without naming the other account's seal or company.
    own = await api.post(
        "/v1/orders",
        json={"type": "enterprise_seal", "company": COMPANY, "years": 1},
        headers=intruder.headers,
    )
    assert own.status_code == 409, own.text
    assert own.json()["code"] == "seal_exists"
    assert owned.ids["company_id"] not in own.text
    assert owned.ids["seal_id"] not in own.text
    # Another company typed in makes the intruder's own company record.
    other = await api.post(
        "/v1/orders",
        json={"type": "enterprise_seal", "company": another_company(3), "years": 1},
        headers=intruder.headers,
    )
    assert other.json()["company_id"] != owned.ids["company_id"]


async def test_the_staff_cannot_be_bypassed_with_an_account_token(
    api: httpx.AsyncClient, owned: OwnedObjects
) -> None:
    response = await staff_post(
        api, Staff(headers=owned.owner.headers, username="x"), f"/orders/{owned.ids['order_id']}/complete"
    )
    assert response.status_code == 401
