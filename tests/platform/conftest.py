"""Fixtures of the platform tests; other platform test modules reuse them by these names."""

from __future__ import annotations

import asyncio
import importlib
import itertools
import pkgutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

import seal_platform
from platform_client.client import PlatformClient
from seal_platform.app import build_platform_services, create_platform_app
from seal_platform.clock import FrozenClock
from seal_platform.db import Base
from seal_platform.security import PasswordHasher
from seal_platform.services import PlatformServices
from seal_platform.settings import PlatformSettings
from seal_platform.sms import ConsoleSmsProvider
from tests.contract.postgres import PG_URL, require_postgres

SERVICE_KEY = "test-service-key-0123456789"
BASE_URL = "http://platform.test"
DEFAULT_PASSWORD = "secret123"
# A valid ID number of a person born 1991-01-01 (GB 11643 check digit included).
ADULT_ID_NUMBER = "360426199101010071"

_phones = itertools.count(13900000001)


def import_all_platform_modules() -> None:
    """Import every module of ``seal_platform`` so that all their tables join ``Base.metadata``.

    Walking the package keeps this working as other modules (orders, documents, invoices, ...)
    are added; migrations are scripts for alembic, not models.
    """
    for module in pkgutil.walk_packages(seal_platform.__path__, prefix="seal_platform."):
        if ".migrations" in module.name:
            continue
        # No try/except: a module that fails to import must fail the suite, not drop its tables.
        importlib.import_module(module.name)


def new_phone() -> str:
    return str(next(_phones))


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


# A module runs on both databases with ``pytestmark = ON_BOTH_DATABASES``; other modules stay on
# SQLite. On PostgreSQL a module gets a database of its own and every test starts from empty tables.
ON_BOTH_DATABASES = pytest.mark.platform_on_both_databases


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # tests that never touch the database (pure rule tables) run once
    if "platform_database" in metafunc.fixturenames and metafunc.definition.get_closest_marker(
        "platform_on_both_databases"
    ):
        metafunc.parametrize(
            "platform_database",
            ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
            indirect=True,
        )


async def _admin_execute(statement: str) -> None:
    # CREATE/DROP DATABASE cannot run inside a transaction block
    admin = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(sa.text(statement))
    finally:
        await admin.dispose()


@pytest.fixture(scope="module")
def platform_pg_url() -> Iterator[str]:
    """A PostgreSQL database for one test module, dropped after it."""
    asyncio.run(require_postgres())
    base = make_url(PG_URL)
    name = f"{base.database}_platform_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin_execute(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def platform_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The platform's database URL: SQLite unless the module asks for both databases."""
    if getattr(request, "param", "sqlite") == "postgres":
        url: str = request.getfixturevalue("platform_pg_url")
        return url
    return f"sqlite+aiosqlite:///{tmp_path / 'platform.db'}"


@pytest.fixture
def platform_settings(tmp_path: Path, platform_database: str) -> PlatformSettings:
    return PlatformSettings(
        _env_file=None,
        database_url=platform_database,
        data_dir=tmp_path / "platform-data",
        service_key=SERVICE_KEY,
        secret_key="test-secret-key-for-field-encryption",
        public_base_url=BASE_URL,
        dev_pages=True,
    )


@pytest.fixture
def console_sms() -> ConsoleSmsProvider:
    return ConsoleSmsProvider()


@pytest.fixture
async def platform_services(
    platform_settings: PlatformSettings, clock: FrozenClock, console_sms: ConsoleSmsProvider
) -> AsyncIterator[PlatformServices]:
    # Cheap argon2 parameters: the tests check behaviour, not the hash's cost.
    services = build_platform_services(
        platform_settings,
        clock,
        sms_provider=console_sms,
        password_hasher=PasswordHasher(time_cost=1, memory_cost_kib=1024, parallelism=1),
    )
    yield services
    await services.db.dispose()


@pytest.fixture
async def platform_app(platform_services: PlatformServices) -> FastAPI:
    import_all_platform_modules()
    async with platform_services.db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
        if conn.dialect.name == "postgresql":
            # the module's database outlives a test: each test starts from empty tables
            tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
            await conn.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    return create_platform_app(platform_services)


@pytest.fixture
async def api(platform_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=platform_app),
        base_url=BASE_URL,
        headers={"Authorization": f"Bearer {SERVICE_KEY}"},
    ) as http:
        yield http


@pytest.fixture
async def client(platform_app: FastAPI) -> AsyncIterator[PlatformClient]:
    async with PlatformClient(
        BASE_URL, SERVICE_KEY, transport=httpx.ASGITransport(app=platform_app)
    ) as platform_client:
        yield platform_client


@dataclass(frozen=True)
class TestAccount:
    account_id: str
    token: str
    phone: str
    password: str

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Account-Token": self.token}


class MakeAccount(Protocol):
    def __call__(
        self, *, phone: str | None = None, password: str = DEFAULT_PASSWORD, realname: bool = False
    ) -> Awaitable[TestAccount]: ...


@pytest.fixture
def make_account(api: httpx.AsyncClient, console_sms: ConsoleSmsProvider) -> MakeAccount:
    """Register through the API as a user would, reading the code from the console SMS outbox."""

    async def make(
        *, phone: str | None = None, password: str = DEFAULT_PASSWORD, realname: bool = False
    ) -> TestAccount:
        number = phone or new_phone()
        sent = await api.post("/v1/sms-codes", json={"phone": number, "purpose": "register"})
        assert sent.status_code == 201, sent.text
        code = console_sms.last_code(number, "register")
        registered = await api.post(
            "/v1/accounts", json={"phone": number, "sms_code": code, "password": password}
        )
        assert registered.status_code == 201, registered.text
        body = registered.json()
        account = TestAccount(
            account_id=body["account"]["id"], token=body["session"]["token"], phone=number, password=password
        )
        if realname:
            verified = await api.post(
                "/v1/me/realname",
                json={"name": "张三", "id_number": ADULT_ID_NUMBER},
                headers=account.headers,
            )
            assert verified.status_code == 200, verified.text
        return account

    return make


AsyncFactory = Callable[..., Awaitable[TestAccount]]
