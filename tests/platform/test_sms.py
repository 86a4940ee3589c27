from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest

from seal_platform.clock import FrozenClock
from seal_platform.errors import InvalidInput, UpstreamError
from seal_platform.services import PlatformServices
from seal_platform.sms import (
    DAILY_LIMIT_PER_PHONE,
    ConsoleSmsProvider,
    Delivery,
    SmsCode,
    SmsMessage,
    SmsPurpose,
    consume_code,
    send_code,
    verify_code,
)
from tests.platform.conftest import new_phone


async def check_code(services: PlatformServices, *, phone: str, purpose: str, code: str) -> None:
    """What a caller does: verify (own transaction, no session held), then spend the code."""
    code_id = await verify_code(services, phone=phone, purpose=purpose, code=code)
    async with services.db.session() as session:
        await consume_code(session, services, code_id)


async def request_code(api: httpx.AsyncClient, phone: str, purpose: str = "register") -> httpx.Response:
    return await api.post("/v1/sms-codes", json={"phone": phone, "purpose": purpose})


async def register(api: httpx.AsyncClient, phone: str, code: str) -> httpx.Response:
    return await api.post("/v1/accounts", json={"phone": phone, "sms_code": code, "password": "secret123"})


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


async def test_code_is_six_digits_sent_once_and_stored_only_as_a_digest(
    api: httpx.AsyncClient, console_sms: ConsoleSmsProvider, platform_services: PlatformServices
) -> None:
    phone = new_phone()
    sent = await request_code(api, "+86 " + phone)
    assert sent.status_code == 201
    assert sent.json()["phone"] == phone
    assert sent.json()["resend_after_seconds"] == 60
    code = console_sms.last_code(phone)
    assert len(code) == 6
    assert code.isdigit()
    async with platform_services.db.session() as session:
        stored = await session.get(SmsCode, 1)
    assert stored is not None
    assert code not in stored.code_hash


async def test_expiry_is_five_minutes_from_sending(
    api: httpx.AsyncClient, console_sms: ConsoleSmsProvider, clock: FrozenClock
) -> None:
    phone = new_phone()
    sent = await request_code(api, phone)
    assert sent.json()["expires_at"] == (clock.now() + timedelta(minutes=5)).isoformat().replace(
        "+00:00", "Z"
    )


async def test_code_still_works_just_before_expiry(
    api: httpx.AsyncClient, console_sms: ConsoleSmsProvider, clock: FrozenClock
) -> None:
    phone = new_phone()
    await request_code(api, phone)
    clock.advance(timedelta(minutes=5) - timedelta(seconds=1))
    assert (await register(api, phone, console_sms.last_code(phone))).status_code == 201


async def test_expired_code_is_refused_at_five_minutes_and_one_second(
    api: httpx.AsyncClient, console_sms: ConsoleSmsProvider, clock: FrozenClock
) -> None:
    phone = new_phone()
    await request_code(api, phone)
    clock.advance(timedelta(minutes=5, seconds=1))
    answer = await register(api, phone, console_sms.last_code(phone))
    assert answer.status_code == 422
    assert answer.json()["code"] == "sms_code_expired"


async def test_wrong_code_reports_attempts_left_and_dies_after_five(
    api: httpx.AsyncClient, console_sms: ConsoleSmsProvider
) -> None:
    phone = new_phone()
    await request_code(api, phone)
    code = console_sms.last_code(phone)
    for attempts_left in (4, 3, 2, 1):
        answer = await register(api, phone, wrong(code))
        assert answer.status_code == 422
        assert answer.json()["code"] == "sms_code_wrong"
        assert answer.json()["details"]["attempts_left"] == attempts_left
    fifth = await register(api, phone, wrong(code))
    assert fifth.json()["code"] == "sms_code_exhausted"
    # Even the right code is dead now.
    right = await register(api, phone, code)
    assert right.status_code == 422
    assert right.json()["code"] == "sms_code_exhausted"


async def test_resend_within_cooldown_is_rate_limited_with_seconds_left(
    api: httpx.AsyncClient, clock: FrozenClock
) -> None:
    phone = new_phone()
    assert (await request_code(api, phone)).status_code == 201
    clock.advance(timedelta(seconds=45))
    again = await request_code(api, phone)
    assert again.status_code == 429
    assert again.json()["code"] == "sms_resend_cooldown"
    assert again.json()["details"]["retry_after"] == 15


async def test_resend_after_cooldown_replaces_the_previous_code(
    api: httpx.AsyncClient, console_sms: ConsoleSmsProvider, clock: FrozenClock
) -> None:
    phone = new_phone()
    await request_code(api, phone)
    first = console_sms.last_code(phone)
    clock.advance(timedelta(seconds=60))
    assert (await request_code(api, phone)).status_code == 201
    second = console_sms.last_code(phone)
    if first != second:
        stale = await register(api, phone, first)
        assert stale.json()["code"] == "sms_code_wrong"
    assert (await register(api, phone, second)).status_code == 201


async def test_code_is_consumed_by_its_first_use(
    platform_app: object, platform_services: PlatformServices, console_sms: ConsoleSmsProvider
) -> None:
    phone = new_phone()
    await send_code(platform_services, phone, SmsPurpose.LOGIN)
    code = console_sms.last_code(phone)
    await check_code(platform_services, phone=phone, purpose="login", code=code)
    with pytest.raises(InvalidInput) as again:
        await check_code(platform_services, phone=phone, purpose="login", code=code)
    assert again.value.code == "sms_code_missing"


async def test_code_of_one_purpose_does_not_confirm_another(
    platform_app: object, platform_services: PlatformServices, console_sms: ConsoleSmsProvider
) -> None:
    phone = new_phone()
    await send_code(platform_services, phone, SmsPurpose.LOGIN)
    with pytest.raises(InvalidInput) as refused:
        await check_code(
            platform_services,
            phone=phone,
            purpose="cancel_seal",
            code=console_sms.last_code(phone),
        )
    assert refused.value.code == "sms_code_missing"


async def test_wrong_attempts_are_counted_although_the_callers_transaction_rolls_back(
    platform_app: object, platform_services: PlatformServices, console_sms: ConsoleSmsProvider
) -> None:
    phone = new_phone()
    await send_code(platform_services, phone, SmsPurpose.LOGIN)
    for _ in range(2):
        with pytest.raises(InvalidInput):
            await check_code(platform_services, phone=phone, purpose="login", code="000000x")
    async with platform_services.db.session() as session:
        row = await session.get(SmsCode, 1)
    assert row is not None
    assert row.attempts == 2


class FailingProvider:
    async def send(self, message: SmsMessage) -> None:
        raise ConnectionError("gateway down")


async def test_provider_failure_is_upstream_error_and_leaves_a_failed_code_that_never_verifies(
    platform_app: object, platform_services: PlatformServices
) -> None:
    platform_services.sms_provider = FailingProvider()
    phone = new_phone()
    with pytest.raises(UpstreamError) as failed:
        await send_code(platform_services, phone, SmsPurpose.REGISTER)
    assert failed.value.code == "sms_send_failed"
    assert isinstance(failed.value.__cause__, ConnectionError)
    async with platform_services.db.session() as session:
        row = await session.get(SmsCode, 1)
    assert row is not None
    assert row.delivery == Delivery.FAILED
    # Nobody received that code: it is never accepted, whatever is typed.
    with pytest.raises(InvalidInput) as refused:
        await verify_code(platform_services, phone=phone, purpose="register", code="123456")
    assert refused.value.code == "sms_code_missing"


async def test_dev_page_lists_codes_with_masked_phone(
    api: httpx.AsyncClient, console_sms: ConsoleSmsProvider
) -> None:
    phone = "13812345678"
    await request_code(api, phone)
    page = await api.get("/dev/sms")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert console_sms.last_code(phone) in page.text
    assert "138****5678" in page.text
    assert phone not in page.text
    assert "注册账号" in page.text


async def test_parallel_guesses_cannot_exceed_the_attempt_limit(
    platform_app: object, platform_services: PlatformServices, console_sms: ConsoleSmsProvider
) -> None:
    phone = new_phone()
    await send_code(platform_services, phone, SmsPurpose.LOGIN)
    code = console_sms.last_code(phone)

    async def guess() -> str:
        try:
            await check_code(platform_services, phone=phone, purpose="login", code=wrong(code))
        except InvalidInput as refused:
            return refused.code
        return "accepted"

    outcomes = await asyncio.gather(*(guess() for _ in range(8)))
    assert sorted(outcomes) == ["sms_code_exhausted"] * 4 + ["sms_code_wrong"] * 4
    with pytest.raises(InvalidInput) as dead:
        await check_code(platform_services, phone=phone, purpose="login", code=code)
    assert dead.value.code == "sms_code_exhausted"


async def test_daily_limit_per_phone(api: httpx.AsyncClient, clock: FrozenClock) -> None:
    phone = new_phone()
    for _ in range(DAILY_LIMIT_PER_PHONE):
        assert (await request_code(api, phone)).status_code == 201
        clock.advance(timedelta(seconds=61))
    over = await request_code(api, phone)
    assert over.status_code == 429
    assert over.json()["code"] == "sms_daily_limit"
    clock.advance(timedelta(days=1))
    assert (await request_code(api, phone)).status_code == 201
