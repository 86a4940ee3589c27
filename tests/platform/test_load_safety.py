"""The platform under load: one connection per request, a fast "busy", bad JSON numbers refused.

Registration and login count attempts in transactions of their own and hash passwords outside
any transaction; before, a request held one pooled connection while opening a second, so about
30 concurrent registrations exhausted the pool and waited 30 s for a 500.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.routing import APIRoute

import handlers
from bot.engine.context import Ctx
from bot.engine.i18n import Catalog, Translator
from bot.engine.media import MemoryMediaStore
from bot.engine.messages import ConversationKey
from bot.engine.state import ConversationState
from handlers.platform_errors import explain
from platform_client.client import PlatformClient
from platform_client.errors import PlatformUnavailable
from seal_platform.app import build_platform_services, create_platform_app, routers
from seal_platform.clock import FrozenClock
from seal_platform.db import Base, Database, NestedSession
from seal_platform.errors import PlatformBusy
from seal_platform.security import PasswordHasher
from seal_platform.services import PlatformServices
from seal_platform.settings import PlatformSettings
from seal_platform.sms import ConsoleSmsProvider
from tests.contract.postgres import PG_URL, fresh_schema
from tests.platform.conftest import BASE_URL, SERVICE_KEY, MakeAccount, import_all_platform_modules, new_phone


async def _register_and_login(api: httpx.AsyncClient, sms: ConsoleSmsProvider, phone: str) -> list[int]:
    sent = await api.post("/v1/sms-codes", json={"phone": phone, "purpose": "register"})
    code = sms.last_code(phone, "register") if sent.status_code == 201 else "000000"
    body = {"phone": phone, "sms_code": code, "password": "secret123"}
    registered = await api.post("/v1/accounts", json=body)
    login = await api.post("/v1/sessions", json={"phone": phone, "password": "secret123"})
    wrong = await api.post("/v1/sessions", json={"phone": phone, "password": "wrong-password"})
    return [sent.status_code, registered.status_code, login.status_code, wrong.status_code]


@pytest.fixture
async def postgres_schema() -> AsyncIterator[str]:
    async with fresh_schema() as schema:  # also holds the bot's tables, which do not matter here
        yield schema


async def test_concurrent_registrations_on_postgres_need_only_one_connection_each(
    postgres_schema: str, platform_settings: PlatformSettings, clock: FrozenClock
) -> None:
    # A pool of ONE connection and no overflow: a request that held a connection while asking
    # for a second would wait for itself until the pool timeout and fail.
    sms = ConsoleSmsProvider(keep=200)
    services = build_platform_services(
        platform_settings,
        clock,
        sms_provider=sms,
        password_hasher=PasswordHasher(time_cost=1, memory_cost_kib=1024, parallelism=1),
    )
    await services.db.dispose()
    services.db = Database(
        PG_URL,
        pool_size=1,
        max_overflow=0,
        pool_timeout_seconds=30,
        connect_args={"server_settings": {"search_path": postgres_schema}},
    )
    import_all_platform_modules()
    async with services.db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    app = create_platform_app(services)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url=BASE_URL,
            headers={"Authorization": f"Bearer {SERVICE_KEY}"},
            timeout=60,
        ) as api:
            phones = [new_phone() for _ in range(12)]
            outcomes = await asyncio.gather(*(_register_and_login(api, sms, phone) for phone in phones))
        assert outcomes == [[201, 201, 201, 401]] * len(phones)
        checked_out = services.db.engine.pool.checkedout()  # type: ignore[attr-defined]
        assert checked_out == 0
    finally:
        await services.db.dispose()
        services.password_hasher.close()


async def test_a_session_inside_a_session_is_refused_at_once(platform_services: PlatformServices) -> None:
    async with platform_services.db.session():
        with pytest.raises(NestedSession):
            async with platform_services.db.session():
                pass
    # Separate tasks are separate requests: each may hold its own session.
    async with platform_services.db.session():
        await asyncio.gather(asyncio.create_task(_open_session(platform_services)))


async def _open_session(services: PlatformServices) -> None:
    async with services.db.session() as session:
        await session.execute(sa.text("SELECT 1"))


@pytest.fixture
async def one_connection_app(tmp_path: Path, clock: FrozenClock) -> AsyncIterator[tuple[FastAPI, Database]]:
    settings = PlatformSettings(
        _env_file=None,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'busy.db'}",
        data_dir=tmp_path / "data",
        service_key=SERVICE_KEY,
        database_pool_size=1,
        database_max_overflow=0,
        database_pool_timeout_seconds=0.2,
    )
    services = build_platform_services(settings, clock)
    import_all_platform_modules()
    async with services.db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield create_platform_app(services), services.db
    await services.db.dispose()


async def test_saturated_pool_answers_busy_at_once_instead_of_a_500(
    one_connection_app: tuple[FastAPI, Database],
) -> None:
    app, db = one_connection_app
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url=BASE_URL,
        headers={"Authorization": f"Bearer {SERVICE_KEY}"},
    ) as api:
        # Another request holds the only connection for longer than the pool timeout.
        async with db.engine.connect() as held:
            await held.execute(sa.text("SELECT 1"))
            answer = await api.post("/v1/sms-codes", json={"phone": new_phone(), "purpose": "register"})
        assert answer.status_code == 503
        assert answer.json()["code"] == PlatformBusy.code
        assert answer.json()["message"] == "系统繁忙，请稍后再试"
        assert answer.headers["Retry-After"] == "1"
        # Freed again: the next call goes through.
        again = await api.post("/v1/sms-codes", json={"phone": new_phone(), "purpose": "register"})
        assert again.status_code == 201


def _json_routes(settings: PlatformSettings) -> list[tuple[str, str]]:
    routes: list[tuple[str, str]] = []
    for route in (route for router in routers(settings) for route in router.routes):
        if (
            isinstance(route, APIRoute)
            and route.dependant.body_params
            and not route.path.startswith("/console")
        ):
            path = route.path.replace("{", "").replace("}", "")  # any id: validation comes first
            routes.extend((method, path) for method in sorted(route.methods or ()))
    return routes


async def test_nan_and_infinity_in_a_json_body_answer_422_on_every_route(
    api: httpx.AsyncClient, platform_services: PlatformServices, make_account: MakeAccount
) -> None:
    account = await make_account()
    routes = _json_routes(platform_services.settings)
    assert len(routes) >= 15
    for method, path in routes:
        for body in ('{"value": NaN}', '{"value": Infinity, "phone": -Infinity}', "NaN"):
            answer = await api.request(
                method,
                path,
                content=body,
                headers={**account.headers, "Content-Type": "application/json", "X-Staff-Token": "x"},
            )
            assert answer.status_code in {401, 403, 404, 422}, (method, path, body, answer.text)
            assert "Traceback" not in answer.text


async def test_a_422_does_not_echo_a_large_input_back(api: httpx.AsyncClient) -> None:
    huge = "1" * 1_000_000
    answer = await api.post("/v1/sms-codes", json={"phone": huge, "purpose": "register"})
    assert answer.status_code == 422
    assert answer.json()["code"] == "invalid_request"
    assert answer.json()["details"]["errors"] == [{"loc": ["body", "phone"], "type": "string_too_long"}]
    assert len(answer.content) < 1000


async def test_a_saturated_platform_reaches_the_bot_user_as_the_catalogued_busy_sentence(
    one_connection_app: tuple[FastAPI, Database],
) -> None:
    app, db = one_connection_app
    transport = httpx.ASGITransport(app=app)
    async with (
        PlatformClient(BASE_URL, SERVICE_KEY, transport=transport) as client,
        db.engine.connect() as held,
    ):
        await held.execute(sa.text("SELECT 1"))
        with pytest.raises(PlatformUnavailable) as busy:
            await client.accounts.send_sms_code(new_phone(), "register")
    assert busy.value.code == "platform_busy"
    assert (busy.value.method, busy.value.path) == ("POST", "/v1/sms-codes")
    catalog = Catalog([Path(handlers.__file__).parent / "locales"])
    for locale, sentence in (
        ("zh-CN", "系统繁忙，请稍后再试。您已填写的信息都已保存。"),
        ("en", "The system is busy; please try again in a moment. Your answers are saved."),
    ):
        ctx = Ctx(
            key=ConversationKey("telegram", "bot", "u1"),
            conversation_id=None,
            state=ConversationState(locale=locale),
            inbound=None,
            translator=Translator(catalog, locale),
            services=None,
            media=MemoryMediaStore(),
            now=datetime.now(UTC),
        )
        assert explain(ctx, busy.value) == sentence
