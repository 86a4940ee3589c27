"""SMS abuse limits besides the per-phone ones: per chat identity, per web-chat client IP, a
global hourly budget, and an image captcha after a few sends from one web session or IP. Each
refusal says when to try again."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import httpx
import pytest

from seal_platform import captcha
from seal_platform.clock import FrozenClock
from seal_platform.settings import PlatformSettings
from tests.platform.conftest import new_phone


async def ask(api: httpx.AsyncClient, **origin: Any) -> httpx.Response:
    return await api.post("/v1/sms-codes", json={"phone": new_phone(), "purpose": "register", **origin})


@pytest.fixture
def limits(platform_settings: PlatformSettings) -> PlatformSettings:
    platform_settings.sms_daily_limit_per_identity = 3
    platform_settings.sms_hourly_limit_per_ip = 4
    platform_settings.sms_hourly_budget = 8
    platform_settings.sms_captcha_after = 2
    return platform_settings


async def test_one_chat_identity_gets_a_few_codes_a_day_whatever_the_phone(
    limits: PlatformSettings, api: httpx.AsyncClient, clock: FrozenClock
) -> None:
    for _ in range(3):
        assert (await ask(api, identity="wechat:oA")).status_code == 201
        clock.advance(timedelta(hours=1))
    refused = await ask(api, identity="wechat:oA")
    assert refused.status_code == 429
    assert refused.json()["code"] == "sms_identity_limit"
    # The first of the three leaves the 24-hour window 21 hours from now.
    assert refused.json()["details"]["retry_after"] == 21 * 3600
    assert refused.json()["message"] == "今天获取验证码的次数已达上限，请21小时后再试"
    assert (await ask(api, identity="telegram:42")).status_code == 201
    clock.advance(timedelta(hours=21, seconds=1))
    assert (await ask(api, identity="wechat:oA")).status_code == 201


async def test_one_client_address_gets_a_few_codes_an_hour(
    limits: PlatformSettings, api: httpx.AsyncClient, clock: FrozenClock
) -> None:
    limits.sms_captcha_after = 100  # this test is about the address limit alone
    for n in range(4):
        assert (await ask(api, identity=f"web:s{n}", client_ip="198.51.100.1")).status_code == 201
        clock.advance(timedelta(minutes=5))
    refused = await ask(api, identity="web:s9", client_ip="198.51.100.1")
    assert refused.status_code == 429
    assert refused.json()["code"] == "sms_ip_limit"
    assert refused.json()["message"] == "当前网络获取验证码过于频繁，请40分钟后再试"
    assert (await ask(api, identity="web:s9", client_ip="198.51.100.2")).status_code == 201


async def test_the_platform_sends_no_more_than_its_hourly_budget(
    limits: PlatformSettings, api: httpx.AsyncClient, clock: FrozenClock
) -> None:
    for n in range(8):
        assert (await ask(api, identity=f"telegram:{n}")).status_code == 201
    refused = await ask(api, identity="telegram:99")
    assert refused.status_code == 429
    assert refused.json()["code"] == "sms_budget_exhausted"
    assert refused.json()["details"]["retry_after"] == 3600
    clock.advance(timedelta(hours=1, seconds=1))
    assert (await ask(api, identity="telegram:99")).status_code == 201


async def test_a_web_session_needs_a_solved_captcha_after_a_few_sends(
    limits: PlatformSettings, api: httpx.AsyncClient, clock: FrozenClock
) -> None:
    limits.sms_daily_limit_per_identity = limits.sms_hourly_limit_per_ip = 10  # only the captcha here
    web = {"identity": "web:cookie-1", "client_ip": "203.0.113.5"}
    for _ in range(2):
        assert (await ask(api, **web)).status_code == 201
    required = await ask(api, **web)
    assert required.status_code == 422
    assert required.json()["code"] == "sms_captcha_required"
    # A fresh cookie from the same address is asked too.
    assert (await ask(api, identity="web:cookie-2", client_ip="203.0.113.5")).json()["code"] == (
        "sms_captcha_required"
    )

    image = await api.post("/v1/captchas")
    assert image.status_code == 201
    assert base64.b64decode(image.json()["png_base64"]).startswith(b"\x89PNG")
    wrong = await ask(api, **web, captcha_token=image.json()["token"], captcha_answer="XXXX")
    assert wrong.json()["code"] == "sms_captcha_wrong"

    solved = await captcha.issue(limits.secret_key.get_secret_value(), clock.now(), answer="K7PM")
    ok = await ask(api, **web, captcha_token=solved.token, captcha_answer=" k7pm ")
    assert ok.status_code == 201, ok.text
    reused = await ask(api, **web, captcha_token=solved.token, captcha_answer="K7PM")
    assert reused.json()["code"] == "sms_captcha_wrong"

    late = await captcha.issue(limits.secret_key.get_secret_value(), clock.now(), answer="K7PM")
    clock.advance(timedelta(minutes=6))
    expired = await ask(api, **web, captcha_token=late.token, captcha_answer="K7PM")
    assert expired.json()["message"] == "图形验证码已过期，请重新获取"


async def test_chats_without_a_web_origin_are_never_asked_for_a_captcha(
    limits: PlatformSettings, api: httpx.AsyncClient
) -> None:
    for _ in range(3):
        assert (await ask(api, identity="telegram:7")).status_code == 201
