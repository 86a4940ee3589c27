"""A company has one seal of each kind: a second enterprise seal is refused while the first is
live or while another order for it is on its way; the other kind, or a new seal after the old
one was cancelled, is accepted."""

from __future__ import annotations

from typing import Any

import httpx

from seal_platform.sms import ConsoleSmsProvider
from tests.platform.conftest import ON_BOTH_DATABASES, MakeAccount
from tests.platform.test_orders_support import (
    ADDRESS,
    COMPANY,
    Staff,
    active_seal,
    admin,
    create_order,
    enterprise_documents,
    paid_enterprise_order,
    submit,
    upload,
)

pytestmark = ON_BOTH_DATABASES

__all__ = ["admin"]


async def order_attempt(
    api: httpx.AsyncClient, account: Any, order_type: str = "enterprise_seal"
) -> httpx.Response:
    documents = await enterprise_documents(api, account)
    if order_type != "enterprise_seal":
        documents = {
            "id_card_front": await upload(api, account, "id_card_front"),
            "id_card_back": await upload(api, account, "id_card_back"),
            "impression_form_personal": await upload(api, account, "impression_form"),
        }
    body = {
        "type": order_type,
        "company": COMPANY,
        "years": 1,
        "mailing_address": ADDRESS,
        "documents": documents,
    }
    return await api.post("/v1/orders", json=body, headers=account.headers)


async def test_a_second_enterprise_seal_for_a_company_with_a_live_one_is_refused(
    api: httpx.AsyncClient, make_account: MakeAccount, admin: Staff
) -> None:
    account = await make_account(realname=True)
    seal = await active_seal(api, account, admin)
    refused = await order_attempt(api, account)
    assert refused.status_code == 409, refused.text
    error = refused.json()
    assert error["code"] == "seal_exists"
    assert error["details"]["seal_id"] == seal["id"]
    # the legal representative's seal of the same company is another kind: accepted
    personal = await order_attempt(api, account, "personal_seal")
    assert personal.status_code == 201, personal.text


async def test_another_account_cannot_order_the_seal_of_a_company_that_has_one(
    api: httpx.AsyncClient, make_account: MakeAccount, admin: Staff
) -> None:
    first = await make_account(realname=True)
    await active_seal(api, first, admin)
    second = await make_account(realname=True)
    refused = await order_attempt(api, second)
    assert refused.status_code == 409, refused.text
    error = refused.json()
    assert error["code"] == "seal_exists"
    assert "seal_id" not in error["details"]  # another account's seal is not named


async def test_an_open_order_blocks_a_second_one_until_it_is_cancelled(
    api: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    account = await make_account(realname=True)
    paid = await paid_enterprise_order(api, account)
    refused = await order_attempt(api, account)
    assert refused.status_code == 409, refused.text
    error = refused.json()
    assert error["code"] == "seal_order_open"
    assert error["details"]["order_id"] == paid["id"]


async def test_two_drafts_race_and_only_the_first_submitted_goes_on(
    api: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    account = await make_account(realname=True)
    first = (await order_attempt(api, account)).json()
    second = (await order_attempt(api, account)).json()  # drafts do not block each other
    await submit(api, account, first["id"])
    refused = await api.post(f"/v1/orders/{second['id']}/submit", headers=account.headers)
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "seal_order_open"


async def test_a_cancelled_seal_leaves_room_for_a_new_one(
    api: httpx.AsyncClient, make_account: MakeAccount, admin: Staff, console_sms: ConsoleSmsProvider
) -> None:
    account = await make_account(realname=True)
    seal = await active_seal(api, account, admin)
    # Cancelled the way an applicant cancels one: a cancellation order confirmed by SMS code.
    order = await create_order(api, account, {"type": "cancellation", "seal_id": seal["id"]})
    sent = await api.post(
        "/v1/sms-codes", json={"phone": account.phone, "purpose": "cancel_seal"}, headers=account.headers
    )
    assert sent.status_code == 201, sent.text
    confirmed = await api.post(
        f"/v1/orders/{order['id']}/confirm-cancellation",
        json={"sms_code": console_sms.last_code(account.phone, "cancel_seal")},
        headers=account.headers,
    )
    assert confirmed.status_code == 200, confirmed.text
    again = await order_attempt(api, account)
    assert again.status_code == 201, again.text
