from __future__ import annotations

from datetime import timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from seal_platform.accounts import Account, account_id_number
from seal_platform.app import build_platform_services, create_platform_app
from seal_platform.clock import FrozenClock
from seal_platform.services import PlatformServices
from seal_platform.settings import PlatformSettings
from seal_platform.sms import ConsoleSmsProvider
from seal_platform.validation import id_check_char
from tests.platform.conftest import ADULT_ID_NUMBER, BASE_URL, SERVICE_KEY, MakeAccount, new_phone


async def login(api: httpx.AsyncClient, phone: str, password: str) -> httpx.Response:
    return await api.post("/v1/sessions", json={"phone": phone, "password": password})


# --- service credential -----------------------------------------------------------------------


async def test_missing_service_credential_is_401(platform_app: FastAPI) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=platform_app), base_url=BASE_URL) as bare:
        answer = await bare.post("/v1/sms-codes", json={"phone": new_phone(), "purpose": "register"})
    assert answer.status_code == 401
    assert answer.json()["code"] == "service_credential_missing"


async def test_wrong_service_credential_is_401(platform_app: FastAPI) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=platform_app),
        base_url=BASE_URL,
        headers={"Authorization": "Bearer not-the-key"},
    ) as wrong:
        answer = await wrong.get("/v1/events")
    assert answer.status_code == 401
    assert answer.json()["code"] == "service_credential_invalid"


async def test_account_token_without_service_credential_is_401(
    platform_app: FastAPI, make_account: MakeAccount
) -> None:
    account = await make_account()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=platform_app), base_url=BASE_URL) as bare:
        answer = await bare.get("/v1/me", headers=account.headers)
    assert answer.status_code == 401


# --- registration -----------------------------------------------------------------------------


async def test_register_returns_account_and_working_session(
    api: httpx.AsyncClient, console_sms: ConsoleSmsProvider, clock: FrozenClock
) -> None:
    phone = new_phone()
    await api.post("/v1/sms-codes", json={"phone": phone, "purpose": "register"})
    answer = await api.post(
        "/v1/accounts",
        json={"phone": f"+86-{phone}", "sms_code": console_sms.last_code(phone), "password": "secret123"},
    )
    assert answer.status_code == 201
    body = answer.json()
    assert body["account"]["phone"] == phone
    assert body["account"]["realname_status"] == "none"
    me = await api.get("/v1/me", headers={"X-Account-Token": body["session"]["token"]})
    assert me.json()["id"] == body["account"]["id"]


async def test_password_is_stored_as_argon2id(
    make_account: MakeAccount, platform_services: PlatformServices
) -> None:
    account = await make_account(password="secret123")
    async with platform_services.db.session() as session:
        row = await session.get(Account, account.account_id)
    assert row is not None
    assert row.password_hash.startswith("$argon2id$")
    assert "secret123" not in row.password_hash


async def test_register_code_for_a_registered_phone_is_refused(
    api: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    account = await make_account()
    answer = await api.post("/v1/sms-codes", json={"phone": account.phone, "purpose": "register"})
    assert answer.status_code == 409
    assert answer.json()["code"] == "phone_registered"


async def test_registering_a_phone_twice_is_a_conflict(
    api: httpx.AsyncClient, console_sms: ConsoleSmsProvider, clock: FrozenClock
) -> None:
    phone = new_phone()
    # A replayed registration (a retried request after a lost answer) must not create a second account.
    await api.post("/v1/sms-codes", json={"phone": phone, "purpose": "register"})
    first_code = console_sms.last_code(phone)
    assert (
        await api.post("/v1/accounts", json={"phone": phone, "sms_code": first_code, "password": "secret123"})
    ).status_code == 201
    again = await api.post(
        "/v1/accounts", json={"phone": phone, "sms_code": first_code, "password": "secret123"}
    )
    assert again.status_code == 409
    assert again.json()["code"] == "phone_registered"


async def test_weak_password_is_refused_before_the_code_is_spent(
    api: httpx.AsyncClient, console_sms: ConsoleSmsProvider
) -> None:
    phone = new_phone()
    await api.post("/v1/sms-codes", json={"phone": phone, "purpose": "register"})
    code = console_sms.last_code(phone)
    weak = await api.post("/v1/accounts", json={"phone": phone, "sms_code": code, "password": "password"})
    assert weak.status_code == 422
    assert weak.json()["code"] == "password_too_weak"
    fixed = await api.post("/v1/accounts", json={"phone": phone, "sms_code": code, "password": "passw0rd"})
    assert fixed.status_code == 201


async def test_invalid_mobile_is_refused_with_its_code(api: httpx.AsyncClient) -> None:
    answer = await api.post("/v1/sms-codes", json={"phone": "12345", "purpose": "register"})
    assert answer.status_code == 422
    assert answer.json() == {
        "code": "invalid_mobile",
        "kind": "invalid_input",
        "message": answer.json()["message"],
        "details": {},
    }


# --- login ---------------------------------------------------------------------------------------


async def test_login_with_password(
    api: httpx.AsyncClient, make_account: MakeAccount, clock: FrozenClock
) -> None:
    account = await make_account(password="secret123")
    answer = await login(api, account.phone, "secret123")
    assert answer.status_code == 201
    body = answer.json()
    assert body["account_id"] == account.account_id
    assert body["token"] != account.token
    assert body["expires_at"] == (clock.now() + timedelta(days=30)).isoformat().replace("+00:00", "Z")


async def test_login_with_sms_code(
    api: httpx.AsyncClient, make_account: MakeAccount, console_sms: ConsoleSmsProvider, clock: FrozenClock
) -> None:
    account = await make_account()
    clock.advance(timedelta(minutes=1))
    assert (
        await api.post("/v1/sms-codes", json={"phone": account.phone, "purpose": "login"})
    ).status_code == 201
    answer = await api.post(
        "/v1/sessions",
        json={"phone": account.phone, "sms_code": console_sms.last_code(account.phone, "login")},
    )
    assert answer.status_code == 201
    assert answer.json()["account_id"] == account.account_id


async def test_login_code_for_an_unknown_phone_is_not_found(api: httpx.AsyncClient) -> None:
    answer = await api.post("/v1/sms-codes", json={"phone": new_phone(), "purpose": "login"})
    assert answer.status_code == 404
    assert answer.json()["code"] == "account_not_found"


async def test_login_needs_exactly_one_method(api: httpx.AsyncClient, make_account: MakeAccount) -> None:
    account = await make_account()
    both = await api.post(
        "/v1/sessions", json={"phone": account.phone, "password": "x", "sms_code": "123456"}
    )
    neither = await api.post("/v1/sessions", json={"phone": account.phone})
    assert both.json()["code"] == neither.json()["code"] == "login_method_required"


async def test_wrong_password_and_unknown_phone_look_the_same(
    api: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    account = await make_account()
    wrong_password = await login(api, account.phone, "wrong1234")
    unknown_phone = await login(api, new_phone(), "wrong1234")
    assert wrong_password.status_code == unknown_phone.status_code == 401
    assert wrong_password.json()["code"] == unknown_phone.json()["code"] == "wrong_credentials"
    assert wrong_password.json()["details"] == unknown_phone.json()["details"] == {"attempts_left": 4}


async def test_five_wrong_passwords_lock_the_phone_for_fifteen_minutes(
    api: httpx.AsyncClient, make_account: MakeAccount, clock: FrozenClock
) -> None:
    account = await make_account(password="secret123")
    for attempts_left in (4, 3, 2, 1):
        answer = await login(api, account.phone, "wrong1234")
        assert answer.json()["details"]["attempts_left"] == attempts_left
    fifth = await login(api, account.phone, "wrong1234")
    assert fifth.status_code == 429
    assert fifth.json()["code"] == "login_locked"

    clock.advance(timedelta(minutes=10))
    locked = await login(api, account.phone, "secret123")
    assert locked.status_code == 429
    assert locked.json()["details"]["retry_after"] == 5 * 60

    clock.advance(timedelta(minutes=5))
    assert (await login(api, account.phone, "secret123")).status_code == 201


async def test_successful_login_resets_the_failure_count(
    api: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    account = await make_account(password="secret123")
    for _ in range(4):
        await login(api, account.phone, "wrong1234")
    assert (await login(api, account.phone, "secret123")).status_code == 201
    assert (await login(api, account.phone, "wrong1234")).json()["details"]["attempts_left"] == 4


async def test_sms_login_lifts_a_password_lock(
    api: httpx.AsyncClient, make_account: MakeAccount, console_sms: ConsoleSmsProvider
) -> None:
    account = await make_account(password="secret123")
    for _ in range(5):
        await login(api, account.phone, "wrong1234")
    await api.post("/v1/sms-codes", json={"phone": account.phone, "purpose": "login"})
    code = console_sms.last_code(account.phone, "login")
    assert (
        await api.post("/v1/sessions", json={"phone": account.phone, "sms_code": code})
    ).status_code == 201
    assert (await login(api, account.phone, "secret123")).status_code == 201


# --- sessions and tokens ---------------------------------------------------------------------------


async def test_me_without_account_token_is_401(api: httpx.AsyncClient) -> None:
    answer = await api.get("/v1/me")
    assert answer.status_code == 401
    assert answer.json()["code"] == "account_token_missing"


async def test_unknown_account_token_is_401(api: httpx.AsyncClient) -> None:
    answer = await api.get("/v1/me", headers={"X-Account-Token": "forged"})
    assert answer.status_code == 401
    assert answer.json()["code"] == "account_token_invalid"


async def test_logout_revokes_only_that_token(api: httpx.AsyncClient, make_account: MakeAccount) -> None:
    account = await make_account()
    other_session = (await login(api, account.phone, account.password)).json()["token"]
    assert (await api.delete("/v1/sessions/current", headers=account.headers)).status_code == 204
    revoked = await api.get("/v1/me", headers=account.headers)
    assert revoked.status_code == 401
    assert revoked.json()["code"] == "account_token_invalid"
    assert (await api.get("/v1/me", headers={"X-Account-Token": other_session})).status_code == 200


async def test_token_expires_after_its_lifetime(
    api: httpx.AsyncClient, make_account: MakeAccount, clock: FrozenClock
) -> None:
    account = await make_account()
    clock.advance(timedelta(days=30) - timedelta(seconds=1))
    assert (await api.get("/v1/me", headers=account.headers)).status_code == 200
    clock.advance(timedelta(seconds=1))
    expired = await api.get("/v1/me", headers=account.headers)
    assert expired.status_code == 401
    assert expired.json()["code"] == "account_token_expired"


async def test_each_token_reads_only_its_own_account(
    api: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    first = await make_account()
    second = await make_account(realname=True)
    me_first = (await api.get("/v1/me", headers=first.headers)).json()
    me_second = (await api.get("/v1/me", headers=second.headers)).json()
    assert (me_first["id"], me_first["phone"], me_first["realname_status"]) == (
        first.account_id,
        first.phone,
        "none",
    )
    assert (me_second["id"], me_second["phone"], me_second["realname_status"]) == (
        second.account_id,
        second.phone,
        "verified",
    )
    # The realname of B went to B only.
    assert me_first["real_name"] is None


async def test_cancel_seal_code_needs_login_and_goes_only_to_own_phone(
    api: httpx.AsyncClient, make_account: MakeAccount, console_sms: ConsoleSmsProvider
) -> None:
    owner = await make_account()
    stranger = await make_account()
    anonymous = await api.post("/v1/sms-codes", json={"phone": owner.phone, "purpose": "cancel_seal"})
    assert anonymous.status_code == 401
    foreign = await api.post(
        "/v1/sms-codes", json={"phone": owner.phone, "purpose": "cancel_seal"}, headers=stranger.headers
    )
    assert foreign.status_code == 409
    assert foreign.json()["code"] == "phone_not_account_phone"
    own = await api.post(
        "/v1/sms-codes", json={"phone": owner.phone, "purpose": "cancel_seal"}, headers=owner.headers
    )
    assert own.status_code == 201
    assert console_sms.latest(1)[0].purpose == "cancel_seal"
    assert console_sms.latest(1)[0].phone == owner.phone


# --- real-name -----------------------------------------------------------------------------------


async def test_realname_verification_stores_masked_and_encrypted_id(
    api: httpx.AsyncClient, make_account: MakeAccount, platform_services: PlatformServices
) -> None:
    account = await make_account()
    answer = await api.post(
        "/v1/me/realname", json={"name": " 张三 ", "id_number": ADULT_ID_NUMBER}, headers=account.headers
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["realname_status"] == "verified"
    assert body["real_name"] == "张三"
    assert body["id_number_masked"] == "360***********0071"
    async with platform_services.db.session() as session:
        row = await session.scalar(select(Account).where(Account.id == account.account_id))
    assert row is not None
    assert row.id_number_enc is not None
    assert ADULT_ID_NUMBER not in row.id_number_enc
    assert row.id_number_enc.startswith(platform_services.field_cipher.current_version + ":")  # its key id
    assert account_id_number(platform_services, row) == ADULT_ID_NUMBER


async def test_realname_with_bad_check_digit_is_refused(
    api: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    account = await make_account()
    answer = await api.post(
        "/v1/me/realname", json={"name": "张三", "id_number": "360426199101010072"}, headers=account.headers
    )
    assert answer.status_code == 422
    assert answer.json()["code"] == "invalid_id_check_digit"
    assert (await api.get("/v1/me", headers=account.headers)).json()["realname_status"] == "none"


async def test_realname_with_future_birth_date_is_refused(
    api: httpx.AsyncClient, make_account: MakeAccount, clock: FrozenClock
) -> None:
    account = await make_account()
    body = "36042620270101007"  # born 2027-01-01, after the test clock's today (2026-11-28)
    answer = await api.post(
        "/v1/me/realname",
        json={"name": "张三", "id_number": body + id_check_char(body)},
        headers=account.headers,
    )
    assert answer.json()["code"] == "invalid_id_birth_date"


async def test_realname_of_a_minor_is_refused(
    api: httpx.AsyncClient, make_account: MakeAccount, clock: FrozenClock
) -> None:
    account = await make_account()
    body = "36042620101129007"  # turns 16 one day after the test clock's today
    answer = await api.post(
        "/v1/me/realname",
        json={"name": "张三", "id_number": body + id_check_char(body)},
        headers=account.headers,
    )
    assert answer.status_code == 409
    assert answer.json()["code"] == "realname_underage"


async def test_realname_with_bad_name_is_refused(api: httpx.AsyncClient, make_account: MakeAccount) -> None:
    account = await make_account()
    answer = await api.post(
        "/v1/me/realname", json={"name": "张3", "id_number": ADULT_ID_NUMBER}, headers=account.headers
    )
    assert answer.json()["code"] == "invalid_name_chars"


async def test_verified_realname_cannot_change(api: httpx.AsyncClient, make_account: MakeAccount) -> None:
    account = await make_account(realname=True)
    answer = await api.post(
        "/v1/me/realname", json={"name": "李四", "id_number": "11010519491231002X"}, headers=account.headers
    )
    assert answer.status_code == 409
    assert answer.json()["code"] == "realname_already_verified"
    assert (await api.get("/v1/me", headers=account.headers)).json()["real_name"] == "张三"


# --- documentation and dev pages --------------------------------------------------------------------


async def test_openapi_document_lists_the_account_endpoints(api: httpx.AsyncClient) -> None:
    answer = await api.get("/openapi.json")
    assert answer.status_code == 200
    paths = answer.json()["paths"]
    for path in (
        "/v1/sms-codes",
        "/v1/accounts",
        "/v1/sessions",
        "/v1/sessions/current",
        "/v1/me",
        "/v1/me/realname",
        "/v1/events",
    ):
        assert path in paths
    assert (await api.get("/docs")).status_code == 200


async def test_dev_pages_are_absent_when_disabled(
    platform_settings: PlatformSettings, clock: FrozenClock
) -> None:
    settings = platform_settings.model_copy(update={"dev_pages": False})
    services = build_platform_services(settings, clock)
    app = create_platform_app(services)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url=BASE_URL,
        headers={"Authorization": f"Bearer {SERVICE_KEY}"},
    ) as http:
        assert (await http.get("/dev/sms")).status_code == 404
    await services.db.dispose()
