"""``POST /v1/sms-codes`` holds no pooled connection while the SMS gateway answers.

The code is recorded in one short transaction, the provider is called with the session released,
and the outcome is recorded in a second one. Before, a slow gateway kept the connection for the
whole send: with a pool of one, the other requests waited for it and got 503 "busy".
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from sqlalchemy import select

from seal_platform.app import build_platform_services, create_platform_app
from seal_platform.clock import FrozenClock
from seal_platform.db import Base, Database
from seal_platform.errors import RateLimited
from seal_platform.services import PlatformServices
from seal_platform.settings import PlatformSettings
from seal_platform.sms import Delivery, SmsCode, SmsMessage
from tests.contract.postgres import PG_URL, fresh_schema
from tests.platform.conftest import BASE_URL, SERVICE_KEY, import_all_platform_modules, new_phone

SEND_SECONDS = 0.5


@dataclass
class SlowGateway:
    """A gateway that takes ``SEND_SECONDS`` per message and notes how many sends overlapped."""

    failure: Exception | None = None
    in_flight: int = 0
    most_in_flight: int = 0
    delivered: list[SmsMessage] = field(default_factory=list)

    async def send(self, message: SmsMessage) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(SEND_SECONDS)
            if self.failure is not None:
                raise self.failure
            self.delivered.append(message)
        finally:
            self.in_flight -= 1


@pytest.fixture
async def one_connection(
    platform_settings: PlatformSettings, clock: FrozenClock
) -> AsyncIterator[tuple[PlatformServices, SlowGateway]]:
    gateway = SlowGateway()
    async with fresh_schema() as schema:
        services = build_platform_services(platform_settings, clock, sms_provider=gateway)
        await services.db.dispose()
        # ONE connection, no overflow, and a pool timeout shorter than one send: a request that
        # kept its connection during the send would make the others answer 503 busy.
        services.db = Database(
            PG_URL,
            pool_size=1,
            max_overflow=0,
            pool_timeout_seconds=SEND_SECONDS / 2,
            connect_args={"server_settings": {"search_path": schema}},
        )
        import_all_platform_modules()
        async with services.db.engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        try:
            yield services, gateway
        finally:
            await services.db.dispose()
            services.password_hasher.close()


def _client(services: PlatformServices) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_platform_app(services)),
        base_url=BASE_URL,
        headers={"Authorization": f"Bearer {SERVICE_KEY}"},
        timeout=30,
    )


async def test_concurrent_code_requests_do_not_starve_a_one_connection_pool_while_the_gateway_is_slow(
    one_connection: tuple[PlatformServices, SlowGateway],
) -> None:
    services, gateway = one_connection
    phones = [new_phone() for _ in range(8)]
    async with _client(services) as api:
        started = asyncio.get_running_loop().time()
        answers = await asyncio.gather(
            *(api.post("/v1/sms-codes", json={"phone": p, "purpose": "register"}) for p in phones)
        )
        elapsed = asyncio.get_running_loop().time() - started
    assert [a.status_code for a in answers] == [201] * len(phones), [a.text for a in answers]
    # The sends overlapped, which they cannot while each one holds the only connection.
    assert gateway.most_in_flight > 1
    assert elapsed < SEND_SECONDS * len(phones) / 2
    assert sorted(m.phone for m in gateway.delivered) == sorted(phones)
    assert services.db.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    async with services.db.session() as session:
        outcomes = list(await session.scalars(select(SmsCode.delivery)))
    assert outcomes == [Delivery.SENT.value] * len(phones)


async def test_a_failed_send_may_be_retried_at_once_and_still_counts_toward_the_limits(
    one_connection: tuple[PlatformServices, SlowGateway],
) -> None:
    services, gateway = one_connection
    phone = new_phone()
    gateway.failure = RateLimited("短信发送过于频繁，请稍后再试", code="sms_provider_rate_limited")
    services.settings.sms_daily_limit_per_identity = 2
    body = {"phone": phone, "purpose": "register", "identity": "web:session-1"}
    async with _client(services) as api:
        failed = await api.post("/v1/sms-codes", json=body)
        # The provider's own refusal reaches the caller; the row is marked failed, not pending.
        assert failed.status_code == 429, failed.text
        assert failed.json()["code"] == "sms_provider_rate_limited"
        gateway.failure = ConnectionError("gateway reset the connection")
        failed_again = await api.post("/v1/sms-codes", json=body)
        assert failed_again.status_code == 502, failed_again.text
        assert failed_again.json()["code"] == "sms_send_failed"
        async with services.db.session() as session:
            rows = list(await session.scalars(select(SmsCode).order_by(SmsCode.id)))
        assert [r.delivery for r in rows] == [Delivery.FAILED.value] * 2
        gateway.failure = None
        # No cooldown after a failure (nothing reached the phone), but the two failed sends used
        # up this chat identity's allowance of two.
        refused = await api.post("/v1/sms-codes", json=body)
        assert refused.status_code == 429
        assert refused.json()["code"] == "sms_identity_limit"
        retried = await api.post("/v1/sms-codes", json={"phone": phone, "purpose": "register"})
        assert retried.status_code == 201, retried.text
    assert [m.phone for m in gateway.delivered] == [phone]
