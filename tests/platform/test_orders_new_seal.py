"""New-seal orders (enterprise, personal, bundle) from draft to completion, through the API."""

from __future__ import annotations

import httpx

from seal_platform.production.seseal import parse_seseal
from seal_platform.services import PlatformServices
from tests.platform.conftest import ON_BOTH_DATABASES, MakeAccount
from tests.platform.test_orders_support import (
    ADDRESS,
    COMPANY,
    Staff,
    admin,
    create_order,
    event_types,
    events_of,
    new_enterprise_order,
    paid_enterprise_order,
    pay_in_sandbox,
    staff_post,
    submit,
    upload,
)

pytestmark = ON_BOTH_DATABASES

__all__ = ["admin"]


async def test_enterprise_seal_goes_from_draft_to_completed_with_an_event_at_each_step(
    api: httpx.AsyncClient, make_account: MakeAccount, admin: Staff, platform_services: PlatformServices
) -> None:
    account = await make_account(realname=True)
    order = await new_enterprise_order(api, account, years=2)
    assert order["status"] == "draft"
    assert order["amount_fen"] == 2 * 30000

    submitted = await submit(api, account, order["id"])
    assert submitted["status"] == "awaiting_payment"
    assert submitted["payment_deadline"] is not None

    paid = await pay_in_sandbox(api, account, order["id"])
    # Paid, then straight into the review queue.
    assert paid["status"] == "under_review"
    assert paid["paid_at"] is not None

    oid = order["id"]
    assert (await staff_post(api, admin, f"/orders/{oid}/approve")).json()["status"] == "approved"
    produced = await staff_post(api, admin, f"/orders/{oid}/produce")
    assert produced.status_code == 200, produced.text
    assert produced.json()["status"] == "in_production"
    shipped = await staff_post(api, admin, f"/orders/{oid}/ship", {"waybill": "sf 1234567890123"})
    assert shipped.status_code == 200, shipped.text
    assert shipped.json()["waybill"] == "SF1234567890123"
    assert shipped.json()["tracking_url"].startswith("https://www.sf-express.com/chn/sc/waybill/list?")
    assert "SF1234567890123" in shipped.json()["tracking_url"]
    completed = await staff_post(api, admin, f"/orders/{oid}/complete")
    assert completed.json()["status"] == "completed"

    assert await event_types(platform_services, account.account_id) == [
        "order.awaiting_payment",
        "order.paid",
        "order.under_review",
        "order.approved",
        "order.in_production",
        "order.shipped",
        "order.completed",
    ]
    (shipped_event,) = await events_of(platform_services, account.account_id, "order.shipped")
    assert shipped_event["waybill"] == "SF1234567890123"
    assert shipped_event["tracking_url"] == shipped.json()["tracking_url"]

    seals = (await api.get("/v1/seals", headers=account.headers)).json()
    (seal,) = seals
    assert seal["kind"] == "enterprise"
    assert seal["status"] == "active"
    assert seal["holder_name"] == COMPANY["name"]
    assert len(seal["seal_code"]) == 13
    assert seal["certificate_serial"]
    impression = await api.get(f"/v1/seals/{seal['id']}/impression.png", headers=account.headers)
    assert impression.content.startswith(b"\x89PNG")
    seseal = await api.get(f"/v1/documents/{seal['seseal_document_id']}/content", headers=account.headers)
    parsed = parse_seseal(seseal.content)
    assert parsed.name == COMPANY["name"]


async def test_bundle_order_makes_an_enterprise_and_a_personal_seal(
    api: httpx.AsyncClient, make_account: MakeAccount, admin: Staff
) -> None:
    account = await make_account(realname=True)
    documents = {
        "business_licence": await upload(api, account, "business_licence"),
        "impression_form_enterprise": await upload(api, account, "impression_form"),
        "impression_form_personal": await upload(api, account, "impression_form"),
        "id_card_front": await upload(api, account, "id_card_front"),
        "id_card_back": await upload(api, account, "id_card_back"),
    }
    order = await create_order(
        api,
        account,
        {
            "type": "bundle",
            "company": COMPANY,
            "years": 1,
            "mailing_address": ADDRESS,
            "documents": documents,
        },
    )
    assert order["amount_fen"] == 30000 + 20000
    await submit(api, account, order["id"])
    await pay_in_sandbox(api, account, order["id"])
    for step, body in (("approve", None), ("produce", None), ("ship", {"waybill": "123456789012"})):
        response = await staff_post(api, admin, f"/orders/{order['id']}/{step}", body)
        assert response.status_code == 200, response.text
    seals = (await api.get("/v1/seals", headers=account.headers)).json()
    assert sorted((s["kind"], s["holder_name"]) for s in seals) == [
        ("enterprise", COMPANY["name"]),
        ("personal", COMPANY["legal_rep_name"]),
    ]


async def test_rejected_order_is_fixed_resubmitted_and_reviewed_again(
    api: httpx.AsyncClient, make_account: MakeAccount, admin: Staff, platform_services: PlatformServices
) -> None:
    account = await make_account(realname=True)
    order = await paid_enterprise_order(api, account)
    oid = order["id"]
    rejected = await staff_post(
        api, admin, f"/orders/{oid}/reject", {"reason": "营业执照扫描件不清晰，请重新上传"}
    )
    assert rejected.json()["status"] == "rejected"
    (event,) = await events_of(platform_services, account.account_id, "order.rejected")
    assert event["reason"] == "营业执照扫描件不清晰，请重新上传"

    mine = (await api.get(f"/v1/orders/{oid}", headers=account.headers)).json()
    assert mine["reject_reason"] == "营业执照扫描件不清晰，请重新上传"

    new_licence = await upload(api, account, "business_licence")
    resubmitted = await api.post(
        f"/v1/orders/{oid}/resubmit",
        json={"documents": {"business_licence": new_licence}},
        headers=account.headers,
    )
    assert resubmitted.status_code == 200, resubmitted.text
    assert resubmitted.json()["status"] == "under_review"
    assert resubmitted.json()["documents"]["business_licence"] == new_licence
    assert resubmitted.json()["reject_reason"] is None
    assert (await staff_post(api, admin, f"/orders/{oid}/approve")).json()["status"] == "approved"

    types = await event_types(platform_services, account.account_id)
    assert types[-4:] == ["order.rejected", "order.resubmitted", "order.under_review", "order.approved"]


async def test_new_seal_needs_realname_verification(
    api: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    account = await make_account(realname=False)
    response = await api.post(
        "/v1/orders",
        json={"type": "enterprise_seal", "company": COMPANY, "years": 1},
        headers=account.headers,
    )
    assert response.status_code == 409
    assert response.json()["code"] == "realname_required"


async def test_submit_refuses_an_order_with_missing_documents(
    api: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    account = await make_account(realname=True)
    order = await create_order(
        api, account, {"type": "enterprise_seal", "company": COMPANY, "years": 1, "mailing_address": ADDRESS}
    )
    response = await api.post(f"/v1/orders/{order['id']}/submit", headers=account.headers)
    assert response.status_code == 409
    assert response.json()["code"] == "documents_missing"
    assert response.json()["details"]["roles"] == ["business_licence", "impression_form_enterprise"]


async def test_invalid_credit_code_is_refused_with_its_validation_code(
    api: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    account = await make_account(realname=True)
    bad = {**COMPANY, "uscc": "91110000600037341A"}
    response = await api.post(
        "/v1/orders", json={"type": "enterprise_seal", "company": bad, "years": 1}, headers=account.headers
    )
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_credit_code_check_char"


async def test_company_legal_rep_id_is_stored_encrypted_and_shown_masked(
    api: httpx.AsyncClient, make_account: MakeAccount, platform_services: PlatformServices
) -> None:
    account = await make_account(realname=True)
    await create_order(api, account, {"type": "enterprise_seal", "company": COMPANY, "years": 1})
    (company,) = (await api.get("/v1/companies", headers=account.headers)).json()
    assert company["legal_rep_id_masked"] != LEGAL_REP_ID_PLAIN
    assert company["legal_rep_id_masked"].endswith("002X")
    from seal_platform.companies import Company

    async with platform_services.db.session() as session:
        row = await session.get(Company, company["id"])
        assert row is not None
        assert LEGAL_REP_ID_PLAIN not in row.legal_rep_id_encrypted


async def test_unknown_years_option_is_refused(api: httpx.AsyncClient, make_account: MakeAccount) -> None:
    account = await make_account(realname=True)
    response = await api.post(
        "/v1/orders",
        json={"type": "enterprise_seal", "company": COMPANY, "years": 4},
        headers=account.headers,
    )
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_years"
    assert response.json()["details"]["options"] == [1, 2, 3, 5]


LEGAL_REP_ID_PLAIN = COMPANY["legal_rep_id"]
