"""Tencent Cloud SMS and Alibaba Cloud SMS through their real SDKs, against local fakes that
verify each request's signature: a code requested through the platform API reaches the gateway
with the purpose's template and lets the user register; gateway refusals become clear user
errors, transient failures are retried, and no code is ever logged."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from seal_platform.app import build_platform_services, create_platform_app
from seal_platform.clock import FrozenClock
from seal_platform.db import Base
from seal_platform.security import PasswordHasher
from seal_platform.services import PlatformServices
from seal_platform.settings import PlatformSettings
from seal_platform.sms_providers.aliyun import AliyunSmsProvider
from seal_platform.sms_providers.common import RetryPolicy
from seal_platform.sms_providers.tencent import TencentSmsProvider
from tests.fakes.sms_gateways import KEY_ID, SECRET, FakeGateway, running
from tests.platform.conftest import SERVICE_KEY, import_all_platform_modules, new_phone

TEMPLATES = {"register": "1001", "login": "1002", "cancel_seal": "1003"}


@pytest.fixture(params=["tencent", "aliyun"])
def gateway(request: pytest.FixtureRequest) -> Iterator[FakeGateway]:
    with running(FakeGateway(kind=request.param)) as fake:
        yield fake


def sms_settings(gateway: FakeGateway, tmp_path: Path, secret: str = SECRET) -> PlatformSettings:
    return PlatformSettings(
        _env_file=None,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'platform.db'}",
        data_dir=tmp_path / "data",
        service_key=SERVICE_KEY,
        secret_key="test-secret-key-for-field-encryption",
        sms_provider=gateway.kind,
        sms_access_key_id=KEY_ID,
        sms_access_key_secret=secret,
        sms_sign_name="印章服务",
        sms_template_register=TEMPLATES["register"],
        sms_template_login=TEMPLATES["login"],
        sms_template_cancel_seal=TEMPLATES["cancel_seal"],
        sms_tencent_app_id="1400000001",
        sms_endpoint=gateway.endpoint,
        sms_endpoint_scheme="http",
        sms_timeout_seconds=5,
    )


async def _api(services: PlatformServices) -> AsyncIterator[httpx.AsyncClient]:
    import_all_platform_modules()
    async with services.db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    app: FastAPI = create_platform_app(services)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://platform.test",
        headers={"Authorization": f"Bearer {SERVICE_KEY}"},
    ) as http:
        yield http
    await services.db.dispose()


def _no_wait(services: PlatformServices) -> list[float]:
    """Retries without real waiting; returns the list of waits the provider asked for."""
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    provider = services.sms_provider
    assert isinstance(provider, TencentSmsProvider | AliyunSmsProvider)
    provider.sleep = record
    provider.policy = RetryPolicy(attempts=3, backoff=(0.5, 2.0))
    return waits


@pytest.fixture
async def services(gateway: FakeGateway, tmp_path: Path) -> PlatformServices:
    return build_platform_services(
        sms_settings(gateway, tmp_path),
        FrozenClock(),
        password_hasher=PasswordHasher(time_cost=1, memory_cost_kib=1024, parallelism=1),
    )


@pytest.fixture
async def api(services: PlatformServices) -> AsyncIterator[httpx.AsyncClient]:
    async for http in _api(services):
        yield http


async def test_a_registration_code_goes_through_the_signed_gateway_and_registers_the_user(
    api: httpx.AsyncClient, gateway: FakeGateway, caplog: pytest.LogCaptureFixture
) -> None:
    phone = new_phone()
    with caplog.at_level(logging.DEBUG):
        sent = await api.post("/v1/sms-codes", json={"phone": phone, "purpose": "register"})
    assert sent.status_code == 201, sent.text
    assert gateway.bad_signatures == 0
    [message] = gateway.sent
    assert message.template == TEMPLATES["register"]
    assert message.sign_name == "印章服务"
    assert message.phone.endswith(phone)
    code = message.params[0]
    assert len(code) == 6
    assert code not in caplog.text
    registered = await api.post(
        "/v1/accounts", json={"phone": phone, "sms_code": code, "password": "secret123"}
    )
    assert registered.status_code == 201, registered.text


async def test_each_purpose_uses_its_own_template(api: httpx.AsyncClient, gateway: FakeGateway) -> None:
    phone = new_phone()
    assert (await api.post("/v1/sms-codes", json={"phone": phone, "purpose": "register"})).status_code == 201
    code = gateway.sent[-1].params[0]
    registered = await api.post(
        "/v1/accounts", json={"phone": phone, "sms_code": code, "password": "secret123"}
    )
    assert registered.status_code == 201
    assert (await api.post("/v1/sms-codes", json={"phone": phone, "purpose": "login"})).status_code == 201
    assert [m.template for m in gateway.sent] == [TEMPLATES["register"], TEMPLATES["login"]]


async def test_a_wrong_secret_is_refused_by_the_gateway_and_leaves_no_code_behind(
    gateway: FakeGateway, tmp_path: Path
) -> None:
    services = build_platform_services(
        sms_settings(gateway, tmp_path, secret="not-the-secret"), FrozenClock()
    )
    _no_wait(services)
    async for api in _api(services):
        phone = new_phone()
        refused = await api.post("/v1/sms-codes", json={"phone": phone, "purpose": "register"})
        assert refused.status_code == 502
        assert refused.json()["code"] == "sms_send_failed"
        assert gateway.bad_signatures == gateway.requests == 1
        # No code was stored for an SMS never delivered: no resend cooldown either.
        again = await api.post("/v1/sms-codes", json={"phone": phone, "purpose": "register"})
        assert again.json()["code"] == "sms_send_failed"


async def test_transient_failures_are_retried_and_then_the_code_is_sent(
    api: httpx.AsyncClient, gateway: FakeGateway, services: PlatformServices
) -> None:
    waits = _no_wait(services)
    transient = "InternalError.Timeout" if gateway.kind == "tencent" else "isp.SYSTEM_ERROR"
    gateway.answer("http500", transient)
    sent = await api.post("/v1/sms-codes", json={"phone": new_phone(), "purpose": "register"})
    assert sent.status_code == 201, sent.text
    assert gateway.requests == 3
    assert len(gateway.sent) == 1
    assert waits == [0.5, 2.0]


async def test_a_gateway_that_keeps_failing_gives_up_after_three_tries(
    api: httpx.AsyncClient, gateway: FakeGateway, services: PlatformServices
) -> None:
    _no_wait(services)
    gateway.answer("http500", "http500", "http500")
    refused = await api.post("/v1/sms-codes", json={"phone": new_phone(), "purpose": "register"})
    assert refused.status_code == 502
    assert refused.json()["message"] == "短信发送失败，请稍后再试"
    assert gateway.requests == 3


REFUSALS = {
    "tencent": {
        "LimitExceeded.PhoneNumberDailyLimit": (
            429,
            "sms_provider_rate_limited",
            "短信发送过于频繁，请稍后再试",
        ),
        "FailedOperation.PhoneNumberInBlacklist": (
            422,
            "sms_number_blocked",
            "该手机号暂时无法接收短信，请确认号码或换一个号码",
        ),
        "FailedOperation.TemplateIncorrectOrUnapproved": (
            502,
            "sms_template_not_approved",
            "短信服务暂时无法发送验证码，请稍后再试或联系客服",
        ),
    },
    "aliyun": {
        "isv.BUSINESS_LIMIT_CONTROL": (429, "sms_provider_rate_limited", "短信发送过于频繁，请稍后再试"),
        "isv.MOBILE_NUMBER_ILLEGAL": (
            422,
            "sms_number_blocked",
            "该手机号暂时无法接收短信，请确认号码或换一个号码",
        ),
        "isv.SMS_TEMPLATE_ILLEGAL": (
            502,
            "sms_template_not_approved",
            "短信服务暂时无法发送验证码，请稍后再试或联系客服",
        ),
    },
}


async def test_gateway_refusals_become_clear_user_errors_and_are_not_retried(
    api: httpx.AsyncClient, gateway: FakeGateway, services: PlatformServices
) -> None:
    _no_wait(services)
    for provider_code, (status, code, message) in REFUSALS[gateway.kind].items():
        before = gateway.requests
        gateway.answer(provider_code)
        refused = await api.post("/v1/sms-codes", json={"phone": new_phone(), "purpose": "register"})
        assert refused.status_code == status, refused.text
        assert refused.json()["code"] == code
        assert refused.json()["message"] == message
        assert refused.json()["details"]["provider_code"] == provider_code
        assert gateway.requests == before + 1
    assert gateway.sent == []
