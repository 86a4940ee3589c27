from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

import platform_client
from platform_client.base import RetryPolicy
from platform_client.client import PlatformClient
from platform_client.errors import (
    Conflict,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    PlatformUnavailable,
    RateLimited,
    RuleViolation,
)
from seal_platform.clock import FrozenClock
from seal_platform.sms import ConsoleSmsProvider
from tests.platform.conftest import ADULT_ID_NUMBER, BASE_URL, MakeAccount, new_phone


async def test_full_account_journey_through_the_client(
    client: PlatformClient, console_sms: ConsoleSmsProvider, clock: FrozenClock
) -> None:
    phone = new_phone()
    sent = await client.accounts.send_sms_code(phone, "register")
    assert sent.phone == phone
    registration = await client.accounts.register(phone, console_sms.last_code(phone), "secret123")
    token = registration.session.token
    me = await client.accounts.me(token)
    assert me.id == registration.account.id
    assert not me.is_realname_verified
    verified = await client.accounts.verify_realname(token, name="张三", id_number=ADULT_ID_NUMBER)
    assert verified.is_realname_verified
    assert verified.id_number_masked == "360***********0071"
    session = await client.accounts.login_password(phone, "secret123")
    assert session.account_id == me.id
    await client.accounts.logout(session.token)
    with pytest.raises(NotAuthenticated) as revoked:
        await client.accounts.me(session.token)
    assert revoked.value.code == "account_token_invalid"
    assert revoked.value.status == 401


async def test_login_by_sms_through_the_client(
    client: PlatformClient, make_account: MakeAccount, console_sms: ConsoleSmsProvider
) -> None:
    account = await make_account()
    await client.accounts.send_sms_code(account.phone, "login")
    session = await client.accounts.login_sms(account.phone, console_sms.last_code(account.phone, "login"))
    assert session.account_id == account.account_id


async def test_events_through_the_client(client: PlatformClient, make_account: MakeAccount) -> None:
    account = await make_account(realname=True)
    page = await client.events.fetch()
    assert [event.type for event in page.events] == ["account.registered", "account.realname_verified"]
    assert page.events[0].account_id == account.account_id
    rest = await client.events.fetch(after=page.events[0].id)
    assert [event.id for event in rest.events] == [page.events[1].id]
    assert (await client.events.fetch(after=page.next_after)).events == []


async def test_platform_errors_become_client_exceptions_with_code_and_details(
    client: PlatformClient, make_account: MakeAccount
) -> None:
    account = await make_account(realname=True)
    with pytest.raises(InvalidInput) as bad_phone:
        await client.accounts.send_sms_code("12345", "register")
    assert (bad_phone.value.code, bad_phone.value.status) == ("invalid_mobile", 422)

    with pytest.raises(Conflict) as taken:
        await client.accounts.send_sms_code(account.phone, "register")
    assert taken.value.code == "phone_registered"
    assert not isinstance(taken.value, RuleViolation)

    with pytest.raises(NotFound):
        await client.accounts.send_sms_code(new_phone(), "login")

    with pytest.raises(NotAuthenticated) as wrong:
        await client.accounts.login_password(account.phone, "wrong1234")
    assert wrong.value.details == {"attempts_left": 4}

    with pytest.raises(Conflict) as again:
        await client.accounts.verify_realname(account.token, name="李四", id_number=ADULT_ID_NUMBER)
    assert again.value.code == "realname_already_verified"


async def test_rate_limit_carries_retry_after(client: PlatformClient, clock: FrozenClock) -> None:
    phone = new_phone()
    await client.accounts.send_sms_code(phone, "register")
    with pytest.raises(RateLimited) as limited:
        await client.accounts.send_sms_code(phone, "register")
    assert limited.value.code == "sms_resend_cooldown"
    assert limited.value.retry_after == 60


async def test_schema_mismatch_from_fastapi_is_invalid_input(client: PlatformClient) -> None:
    with pytest.raises(InvalidInput) as mismatch:
        await client.accounts.send_sms_code(new_phone(), "no-such-purpose")  # type: ignore[arg-type]
    assert mismatch.value.code == "invalid_request"
    assert mismatch.value.details["errors"]


# --- transport behaviour, against a scripted transport ----------------------------------------------------


def scripted(
    responses: list[Callable[[httpx.Request], httpx.Response]],
) -> tuple[httpx.MockTransport, list[str]]:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        return responses.pop(0)(request)

    return httpx.MockTransport(handler), seen


def answer(status: int, body: object = None) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(status, json=body)


def fail_to_connect(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


def fail_mid_response(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadError("connection reset", request=request)


async def no_sleep(_seconds: float) -> None:
    return None


EMPTY_PAGE = {"events": [], "next_after": 7}


def make_client(transport: httpx.MockTransport, attempts: int = 3) -> PlatformClient:
    return PlatformClient(
        BASE_URL, "key", transport=transport, retry=RetryPolicy(attempts=attempts), sleep=no_sleep
    )


async def test_idempotent_call_is_retried_after_503_and_transport_error() -> None:
    transport, seen = scripted([answer(503), fail_mid_response, answer(200, EMPTY_PAGE)])
    async with make_client(transport) as client:
        page = await client.events.fetch(after=7)
    assert page.next_after == 7
    assert seen == ["GET /v1/events"] * 3


async def test_retries_are_bounded_and_end_in_platform_unavailable() -> None:
    transport, seen = scripted([answer(502), answer(503), answer(503)])
    async with make_client(transport) as client:
        with pytest.raises(PlatformUnavailable) as unavailable:
            await client.events.fetch()
    assert unavailable.value.status == 503
    assert len(seen) == 3


async def test_non_idempotent_call_is_not_repeated_after_a_lost_answer() -> None:
    transport, seen = scripted([fail_mid_response, answer(201, {})])
    async with make_client(transport) as client:
        with pytest.raises(PlatformUnavailable) as unavailable:
            await client.accounts.register("13800138000", "123456", "secret123")
    assert isinstance(unavailable.value.__cause__, httpx.ReadError)
    assert seen == ["POST /v1/accounts"]


async def test_non_idempotent_call_is_retried_when_the_connection_never_opened() -> None:
    session = {"account_id": "a", "token": "t", "expires_at": "2026-12-28T02:00:00Z"}
    transport, seen = scripted([fail_to_connect, answer(201, session)])
    async with make_client(transport) as client:
        result = await client.accounts.login_password("13800138000", "secret123")
    assert result.token == "t"
    assert len(seen) == 2


async def test_unreachable_platform_is_platform_unavailable_from_the_httpx_error() -> None:
    transport, _ = scripted([fail_to_connect, fail_to_connect])
    async with make_client(transport, attempts=2) as client:
        with pytest.raises(PlatformUnavailable) as unavailable:
            await client.events.fetch()
    assert isinstance(unavailable.value.__cause__, httpx.ConnectError)


async def test_service_key_and_account_token_are_sent_as_headers() -> None:
    captured: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        captured.append(request)
        return httpx.Response(204)

    async with PlatformClient(BASE_URL, "the-key", transport=httpx.MockTransport(handler)) as client:
        await client.accounts.logout("account-token")
    assert captured[0].headers["Authorization"] == "Bearer the-key"
    assert captured[0].headers["X-Account-Token"] == "account-token"


async def test_rule_violation_code_maps_to_rule_violation() -> None:
    body = {"code": "rule_violation", "message": "no", "details": {}}
    transport, _ = scripted([answer(409, body)])
    async with make_client(transport) as client:
        with pytest.raises(RuleViolation):
            await client.events.fetch()


async def test_client_used_before_initialize_says_so() -> None:
    client = PlatformClient(BASE_URL, "key", transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    with pytest.raises(RuntimeError, match="initialize"):
        await client.events.fetch()


async def test_sub_apis_are_created_once_per_client() -> None:
    client = PlatformClient(BASE_URL, "key")
    assert client.accounts is client.accounts
    assert client.events is not PlatformClient(BASE_URL, "key").events


def test_platform_client_does_not_import_seal_platform() -> None:
    package = Path(platform_client.__file__).parent
    for source in package.glob("*.py"):
        tree = ast.parse(source.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not any(name.split(".")[0] == "seal_platform" for name in names), source.name
