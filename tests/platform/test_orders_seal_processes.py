"""Processes on an existing seal: renewal, change, reissue, unlock and cancellation."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from seal_platform.clock import FrozenClock
from seal_platform.production.station import RunnerStation
from seal_platform.services import PlatformServices
from seal_platform.sms import ConsoleSmsProvider
from tests.platform.conftest import ON_BOTH_DATABASES, MakeAccount
from tests.platform.conftest import TestAccount as Applicant
from tests.platform.test_orders_support import (
    ADDRESS,
    COMPANY,
    Staff,
    active_seal,
    admin,
    create_order,
    enterprise_documents,
    event_types,
    events_of,
    log_in_again,
    paid_enterprise_order,
    pay_in_sandbox,
    staff_post,
    submit,
    upload,
)
from ukey_bridge.fake_backend import FakeBackend, FakeToken

pytestmark = ON_BOTH_DATABASES

__all__ = ["admin"]


def public_key_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()


async def _renewal(api: httpx.AsyncClient, account: Applicant, seal_id: str) -> httpx.Response:
    return await api.post(
        "/v1/orders", json={"type": "renewal", "seal_id": seal_id, "years": 1}, headers=account.headers
    )


async def test_renewal_outside_the_60_day_window_is_refused_with_the_opening_date(
    api: httpx.AsyncClient, make_account: MakeAccount, admin: Staff
) -> None:
    account = await make_account(realname=True)
    seal = await active_seal(api, account, admin)
    response = await _renewal(api, account, seal["id"])
    assert response.status_code == 409
    problem = response.json()
    assert problem["code"] == "renewal_window_closed"
    valid_to = datetime.fromisoformat(seal["valid_to"])
    assert datetime.fromisoformat(problem["details"]["opens_at"]) == valid_to - timedelta(days=60)
    assert problem["details"]["opens_on"] == (valid_to - timedelta(days=60)).date().isoformat()


async def test_renewal_inside_the_window_is_paid_certified_and_completed_with_a_new_certificate(
    api: httpx.AsyncClient,
    make_account: MakeAccount,
    admin: Staff,
    clock: FrozenClock,
    platform_services: PlatformServices,
) -> None:
    account = await make_account(realname=True)
    seal = await active_seal(api, account, admin)
    valid_to = datetime.fromisoformat(seal["valid_to"])
    clock.set(valid_to - timedelta(days=59))
    account = await log_in_again(api, account)

    order = (await _renewal(api, account, seal["id"])).json()
    assert order["status"] == "draft", order
    assert order["amount_fen"] == 30000
    await submit(api, account, order["id"])
    paid = await pay_in_sandbox(api, account, order["id"])
    assert paid["status"] == "awaiting_ukey"

    job = (await api.get(f"/v1/orders/{order['id']}/ukey-job", headers=account.headers)).json()
    assert job["key_serial"] == seal["key_serial"]
    assert job["certificate_issued"] is False

    wrong_key = await api.post(
        f"/v1/orders/{order['id']}/ukey-job/certificate",
        json={"key_serial": "UKNOTTHEKEY", "public_key_pem": public_key_pem()},
        headers=account.headers,
    )
    assert wrong_key.status_code == 409
    assert wrong_key.json()["code"] == "wrong_ukey"

    certified = await api.post(
        f"/v1/orders/{order['id']}/ukey-job/certificate",
        json={"key_serial": seal["key_serial"], "public_key_pem": public_key_pem()},
        headers=account.headers,
    )
    assert certified.status_code == 200, certified.text
    certificate = x509.load_pem_x509_certificate(certified.json()["certificate_pem"].encode())
    assert certificate.not_valid_after_utc > valid_to

    done = await api.post(
        f"/v1/orders/{order['id']}/ukey-job/complete",
        json={"key_serial": seal["key_serial"]},
        headers=account.headers,
    )
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "completed"
    renewed = (await api.get(f"/v1/seals/{seal['id']}", headers=account.headers)).json()
    assert (
        renewed["certificate_serial"] == certified.json()["certificate_serial"] != seal["certificate_serial"]
    )
    assert datetime.fromisoformat(renewed["valid_to"]) == certificate.not_valid_after_utc
    types = await event_types(platform_services, account.account_id)
    assert types[-3:] == ["order.paid", "order.awaiting_ukey", "order.completed"]


async def test_a_second_renewal_of_a_seal_with_one_in_progress_is_refused(
    api: httpx.AsyncClient, make_account: MakeAccount, admin: Staff, clock: FrozenClock
) -> None:
    account = await make_account(realname=True)
    seal = await active_seal(api, account, admin)
    clock.set(datetime.fromisoformat(seal["valid_to"]) - timedelta(days=10))
    account = await log_in_again(api, account)
    first = (await _renewal(api, account, seal["id"])).json()
    await submit(api, account, first["id"])
    second = await _renewal(api, account, seal["id"])
    assert second.status_code == 409
    assert second.json()["code"] == "seal_busy"


async def test_change_goes_through_review_before_the_ukey_step(
    api: httpx.AsyncClient, make_account: MakeAccount, admin: Staff
) -> None:
    account = await make_account(realname=True)
    seal = await active_seal(api, account, admin)
    documents = {
        "business_licence": await upload(api, account, "business_licence"),
        "impression_form": await upload(api, account, "impression_form"),
    }
    order = await create_order(
        api,
        account,
        {
            "type": "change",
            "seal_id": seal["id"],
            "documents": documents,
            "change": {"company_name": "北京示例数字科技有限公司"},
        },
    )
    assert order["amount_fen"] == 10000
    await submit(api, account, order["id"])
    paid = await pay_in_sandbox(api, account, order["id"])
    assert paid["status"] == "under_review"

    # No UKey step before approval.
    early = await api.get(f"/v1/orders/{order['id']}/ukey-job", headers=account.headers)
    assert early.status_code == 409
    approved = await staff_post(api, admin, f"/orders/{order['id']}/approve")
    assert approved.json()["status"] == "awaiting_ukey"

    certified = await api.post(
        f"/v1/orders/{order['id']}/ukey-job/certificate",
        json={"key_serial": seal["key_serial"], "public_key_pem": public_key_pem()},
        headers=account.headers,
    )
    assert certified.status_code == 200, certified.text
    done = await api.post(
        f"/v1/orders/{order['id']}/ukey-job/complete",
        json={"key_serial": seal["key_serial"]},
        headers=account.headers,
    )
    assert done.json()["status"] == "completed"
    changed = (await api.get(f"/v1/seals/{seal['id']}", headers=account.headers)).json()
    assert changed["holder_name"] == "北京示例数字科技有限公司"
    assert changed["seal_code"] == seal["seal_code"]
    (company,) = (await api.get("/v1/companies", headers=account.headers)).json()
    assert company["name"] == "北京示例数字科技有限公司"


async def test_completing_a_change_before_the_certificate_is_issued_is_refused(
    api: httpx.AsyncClient, make_account: MakeAccount, admin: Staff
) -> None:
    account = await make_account(realname=True)
    seal = await active_seal(api, account, admin)
    documents = {
        "business_licence": await upload(api, account, "business_licence"),
        "impression_form": await upload(api, account, "impression_form"),
    }
    order = await create_order(
        api,
        account,
        {
            "type": "change",
            "seal_id": seal["id"],
            "documents": documents,
            "change": {"legal_rep_name": "赵六"},
        },
    )
    await submit(api, account, order["id"])
    await pay_in_sandbox(api, account, order["id"])
    await staff_post(api, admin, f"/orders/{order['id']}/approve")
    done = await api.post(
        f"/v1/orders/{order['id']}/ukey-job/complete",
        json={"key_serial": seal["key_serial"]},
        headers=account.headers,
    )
    assert done.status_code == 409
    assert done.json()["code"] == "certificate_not_issued"


async def test_reissue_produces_and_ships_a_new_key_for_the_same_seal(
    api: httpx.AsyncClient, make_account: MakeAccount, admin: Staff, platform_services: PlatformServices
) -> None:
    account = await make_account(realname=True)
    seal = await active_seal(api, account, admin)
    order = await create_order(
        api, account, {"type": "reissue", "seal_id": seal["id"], "mailing_address": ADDRESS}
    )
    assert order["amount_fen"] == 15000
    await submit(api, account, order["id"])
    paid = await pay_in_sandbox(api, account, order["id"])
    # No review for a reissue: it waits for production.
    assert paid["status"] == "paid"
    produced = await staff_post(api, admin, f"/orders/{order['id']}/produce")
    assert produced.status_code == 200, produced.text
    assert produced.json()["result"]["replaced"]["key_serial"] == seal["key_serial"]
    shipped = await staff_post(api, admin, f"/orders/{order['id']}/ship", {"waybill": "SF7654321098765"})
    assert shipped.json()["status"] == "shipped"
    assert (await staff_post(api, admin, f"/orders/{order['id']}/complete")).json()["status"] == "completed"

    reissued = (await api.get(f"/v1/seals/{seal['id']}", headers=account.headers)).json()
    assert reissued["key_serial"] != seal["key_serial"]
    assert reissued["certificate_serial"] != seal["certificate_serial"]
    assert reissued["seal_code"] == seal["seal_code"]
    assert reissued["status"] == "active"
    # a reissue replaces the key, it sells no time
    assert reissued["valid_to"] == seal["valid_to"]


async def test_production_without_a_blank_key_records_nothing_and_can_be_retried(
    api: httpx.AsyncClient, make_account: MakeAccount, admin: Staff, platform_services: PlatformServices
) -> None:
    account = await make_account(realname=True)
    order = await paid_enterprise_order(api, account)
    assert (await staff_post(api, admin, f"/orders/{order['id']}/approve")).status_code == 200
    station_keys = FakeBackend()
    platform_services.production_station = RunnerStation(lambda: station_keys)

    refused = await staff_post(api, admin, f"/orders/{order['id']}/produce")
    assert refused.status_code == 409
    assert refused.json()["code"] == "station_no_blank_key"
    unchanged = (await api.get(f"/v1/orders/{order['id']}", headers=account.headers)).json()
    assert unchanged["status"] == "approved"
    assert (await api.get("/v1/seals", headers=account.headers)).json() == []

    station_keys.insert(FakeToken("BLANK0000000001", "", user_pin="", so_pin="", initialised=False))
    produced = await staff_post(api, admin, f"/orders/{order['id']}/produce")
    assert produced.status_code == 200, produced.text
    (seal,) = (await api.get("/v1/seals", headers=account.headers)).json()
    assert seal["key_serial"] == "BLANK0000000001"


async def test_unlock_hands_out_the_so_pin_and_records_the_pin_reset(
    api: httpx.AsyncClient, make_account: MakeAccount, admin: Staff, platform_services: PlatformServices
) -> None:
    account = await make_account(realname=True)
    seal = await active_seal(api, account, admin)
    order = await create_order(api, account, {"type": "unlock", "seal_id": seal["id"]})
    # Not before payment.
    unpaid = await api.get(f"/v1/orders/{order['id']}/ukey-job/so-pin", headers=account.headers)
    assert unpaid.status_code == 409
    await submit(api, account, order["id"])
    paid = await pay_in_sandbox(api, account, order["id"])
    assert paid["status"] == "awaiting_ukey"

    job = (await api.get(f"/v1/orders/{order['id']}/ukey-job", headers=account.headers)).json()
    assert job["reset_pin_to"] == "12345678"
    so_pin = await api.get(f"/v1/orders/{order['id']}/ukey-job/so-pin", headers=account.headers)
    assert so_pin.status_code == 200
    assert so_pin.json()["so_pin"].isdigit()
    # The service credential alone is not enough: the order's owner must be logged in.
    anonymous = await api.get(f"/v1/orders/{order['id']}/ukey-job/so-pin")
    assert anonymous.status_code == 401

    done = await api.post(
        f"/v1/orders/{order['id']}/ukey-job/complete",
        json={"key_serial": seal["key_serial"]},
        headers=account.headers,
    )
    assert done.status_code == 200, done.text
    assert done.json()["result"]["pin_reset_to"] == "12345678"
    completed = await events_of(platform_services, account.account_id, "order.completed")
    assert completed[-1]["order_id"] == order["id"]
    assert completed[-1]["pin_reset_to"] == "12345678"


async def test_so_pin_is_not_released_for_a_renewal(
    api: httpx.AsyncClient, make_account: MakeAccount, admin: Staff, clock: FrozenClock
) -> None:
    account = await make_account(realname=True)
    seal = await active_seal(api, account, admin)
    clock.set(datetime.fromisoformat(seal["valid_to"]) - timedelta(days=30))
    account = await log_in_again(api, account)
    order = (await _renewal(api, account, seal["id"])).json()
    await submit(api, account, order["id"])
    await pay_in_sandbox(api, account, order["id"])
    response = await api.get(f"/v1/orders/{order['id']}/ukey-job/so-pin", headers=account.headers)
    assert response.status_code == 409
    assert response.json()["code"] == "not_an_unlock"


async def _cancellation_code(
    api: httpx.AsyncClient, account: Applicant, console_sms: ConsoleSmsProvider
) -> str:
    sent = await api.post(
        "/v1/sms-codes", json={"phone": account.phone, "purpose": "cancel_seal"}, headers=account.headers
    )
    assert sent.status_code == 201, sent.text
    return console_sms.last_code(account.phone, "cancel_seal")


async def test_cancellation_with_a_wrong_code_is_refused_and_the_right_code_cancels_the_seal(
    api: httpx.AsyncClient,
    make_account: MakeAccount,
    admin: Staff,
    console_sms: ConsoleSmsProvider,
    platform_services: PlatformServices,
) -> None:
    account = await make_account(realname=True)
    seal = await active_seal(api, account, admin)
    order = await create_order(api, account, {"type": "cancellation", "seal_id": seal["id"]})
    assert order["amount_fen"] == 0
    # Cancellation has no payment step.
    no_payment = await api.post(f"/v1/orders/{order['id']}/submit", headers=account.headers)
    assert no_payment.status_code == 409

    code = await _cancellation_code(api, account, console_sms)
    wrong = "000000" if code != "000000" else "111111"
    refused = await api.post(
        f"/v1/orders/{order['id']}/confirm-cancellation", json={"sms_code": wrong}, headers=account.headers
    )
    assert refused.status_code == 422
    assert refused.json()["code"] == "sms_code_wrong"
    still = (await api.get(f"/v1/seals/{seal['id']}", headers=account.headers)).json()
    assert still["status"] == "active"

    confirmed = await api.post(
        f"/v1/orders/{order['id']}/confirm-cancellation", json={"sms_code": code}, headers=account.headers
    )
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "completed"
    cancelled = (await api.get(f"/v1/seals/{seal['id']}", headers=account.headers)).json()
    assert cancelled["status"] == "cancelled"
    (event,) = await events_of(platform_services, account.account_id, "seal.cancelled")
    assert event["seal_id"] == seal["id"]

    # A cancelled seal has no further processes.
    again = await api.post(
        "/v1/orders", json={"type": "unlock", "seal_id": seal["id"]}, headers=account.headers
    )
    assert again.status_code == 409
    assert again.json()["code"] == "seal_status_not_allowed"


async def test_cancellation_without_a_code_sent_is_refused(
    api: httpx.AsyncClient, make_account: MakeAccount, admin: Staff
) -> None:
    account = await make_account(realname=True)
    seal = await active_seal(api, account, admin)
    order = await create_order(api, account, {"type": "cancellation", "seal_id": seal["id"]})
    response = await api.post(
        f"/v1/orders/{order['id']}/confirm-cancellation", json={"sms_code": "123456"}, headers=account.headers
    )
    assert response.status_code == 422
    assert response.json()["code"] == "sms_code_missing"


async def test_expired_cancellation_code_is_refused(
    api: httpx.AsyncClient,
    make_account: MakeAccount,
    admin: Staff,
    console_sms: ConsoleSmsProvider,
    clock: FrozenClock,
) -> None:
    account = await make_account(realname=True)
    seal = await active_seal(api, account, admin)
    order = await create_order(api, account, {"type": "cancellation", "seal_id": seal["id"]})
    code = await _cancellation_code(api, account, console_sms)
    clock.advance(timedelta(minutes=6))
    response = await api.post(
        f"/v1/orders/{order['id']}/confirm-cancellation", json={"sms_code": code}, headers=account.headers
    )
    assert response.status_code == 422
    assert response.json()["code"] == "sms_code_expired"


async def test_seals_past_their_validity_expire_and_can_still_be_renewed(
    api: httpx.AsyncClient,
    make_account: MakeAccount,
    admin: Staff,
    clock: FrozenClock,
    platform_services: PlatformServices,
) -> None:
    from seal_platform.seals import expire_due_seals

    account = await make_account(realname=True)
    seal = await active_seal(api, account, admin)
    clock.set(datetime.fromisoformat(seal["valid_to"]) - timedelta(seconds=1))
    async with platform_services.db.session() as session:
        assert await expire_due_seals(session, clock.now()) == []
    clock.advance(timedelta(seconds=2))
    async with platform_services.db.session() as session:
        assert await expire_due_seals(session, clock.now()) == [seal["id"]]
    async with platform_services.db.session() as session:
        assert await expire_due_seals(session, clock.now()) == []
    account = await log_in_again(api, account)
    assert (await api.get(f"/v1/seals/{seal['id']}", headers=account.headers)).json()["status"] == "expired"
    assert "seal.expired" in await event_types(platform_services, account.account_id)
    renewal = await _renewal(api, account, seal["id"])
    assert renewal.status_code == 201, renewal.text


async def test_a_pin_locked_during_renewal_can_be_unlocked_beside_it_but_not_renewed_twice(
    api: httpx.AsyncClient, make_account: MakeAccount, admin: Staff, clock: FrozenClock
) -> None:
    account = await make_account(realname=True)
    seal = await active_seal(api, account, admin)
    clock.set(datetime.fromisoformat(seal["valid_to"]) - timedelta(days=30))
    account = await log_in_again(api, account)
    renewal = (await _renewal(api, account, seal["id"])).json()
    await submit(api, account, renewal["id"])
    assert (await pay_in_sandbox(api, account, renewal["id"]))["status"] == "awaiting_ukey"

    second = await _renewal(api, account, seal["id"])
    assert second.status_code == 409
    assert second.json()["code"] == "seal_busy"
    unlock = await api.post(
        "/v1/orders", json={"type": "unlock", "seal_id": seal["id"]}, headers=account.headers
    )
    assert unlock.status_code == 201, unlock.text
    assert unlock.json()["type"] == "unlock"


async def test_a_company_name_production_cannot_print_is_refused_before_payment(
    api: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    account = await make_account(realname=True)
    body = {
        "type": "enterprise_seal",
        "company": {**COMPANY, "name": "Example Technology (Beijing) Co Ltd"},
        "years": 1,
        "mailing_address": ADDRESS,
        "documents": await enterprise_documents(api, account),
    }
    refused = await api.post("/v1/orders", json=body, headers=account.headers)
    assert refused.status_code == 422
    assert refused.json()["code"] == "name_not_printable"
    assert refused.json()["details"] == {"field": "company_name", "max_length": 40}
    assert (await api.get("/v1/orders", headers=account.headers)).json() == []


async def test_cancellation_is_refused_while_a_paid_reissue_is_in_progress_then_accepted(
    api: httpx.AsyncClient, make_account: MakeAccount, admin: Staff, console_sms: ConsoleSmsProvider
) -> None:
    account = await make_account(realname=True)
    seal = await active_seal(api, account, admin)
    cancellation = await create_order(api, account, {"type": "cancellation", "seal_id": seal["id"]})
    reissue = await create_order(
        api, account, {"type": "reissue", "seal_id": seal["id"], "mailing_address": ADDRESS}
    )
    await submit(api, account, reissue["id"])
    await pay_in_sandbox(api, account, reissue["id"])

    code = await _cancellation_code(api, account, console_sms)
    refused = await api.post(
        f"/v1/orders/{cancellation['id']}/confirm-cancellation",
        json={"sms_code": code},
        headers=account.headers,
    )
    assert refused.status_code == 409
    assert refused.json()["code"] == "seal_busy"
    assert refused.json()["details"] == {
        "order_id": reissue["id"],
        "order_code": reissue["code"],  # the number the user knows it by
        "order_type": "reissue",
        "status": "paid",
        "amount_fen": 15000,
        "withdrawable": True,  # nothing made for it yet: the chat may offer to withdraw it
    }
    assert (await api.get(f"/v1/seals/{seal['id']}", headers=account.headers)).json()["status"] == "active"

    for step, body in (("produce", None), ("ship", {"waybill": "SF7654321098765"}), ("complete", None)):
        assert (await staff_post(api, admin, f"/orders/{reissue['id']}/{step}", body)).status_code == 200
    # the refusal did not spend the code
    accepted = await api.post(
        f"/v1/orders/{cancellation['id']}/confirm-cancellation",
        json={"sms_code": code},
        headers=account.headers,
    )
    assert accepted.status_code == 200, accepted.text
    assert (await api.get(f"/v1/seals/{seal['id']}", headers=account.headers)).json()["status"] == "cancelled"


async def test_a_paid_reissue_is_withdrawn_with_a_refund_until_production_starts(
    api: httpx.AsyncClient, make_account: MakeAccount, admin: Staff, platform_services: PlatformServices
) -> None:
    account = await make_account(realname=True)
    seal = await active_seal(api, account, admin)
    draft = await create_order(
        api, account, {"type": "reissue", "seal_id": seal["id"], "mailing_address": ADDRESS}
    )
    not_paid = await api.post(f"/v1/orders/{draft['id']}/withdraw", headers=account.headers)
    assert not_paid.status_code == 409, "an unpaid order is simply cancelled, not withdrawn"
    assert not_paid.json()["code"] == "not_withdrawable"
    await submit(api, account, draft["id"])
    await pay_in_sandbox(api, account, draft["id"])
    withdrawn = await api.post(f"/v1/orders/{draft['id']}/withdraw", headers=account.headers)
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["status"] == "cancelled"
    assert withdrawn.json()["result"]["refund_required"] is True
    from sqlalchemy import select

    from seal_platform.payments import Payment

    async with platform_services.db.session() as session:
        statuses = list(await session.scalars(select(Payment.status).where(Payment.order_id == draft["id"])))
    assert statuses == ["refund_required"]
    refused = await staff_post(api, admin, f"/orders/{draft['id']}/produce")
    assert refused.status_code == 409, "staff cannot produce a withdrawn reissue"

    second = await create_order(
        api, account, {"type": "reissue", "seal_id": seal["id"], "mailing_address": ADDRESS}
    )
    await submit(api, account, second["id"])
    await pay_in_sandbox(api, account, second["id"])
    assert (await staff_post(api, admin, f"/orders/{second['id']}/produce")).status_code == 200
    too_late = await api.post(f"/v1/orders/{second['id']}/withdraw", headers=account.headers)
    assert too_late.status_code == 409
    assert too_late.json()["code"] == "not_withdrawable"
    assert too_late.json()["details"]["status"] == "in_production"
