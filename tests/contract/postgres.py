"""PostgreSQL for tests: a fresh schema per test, dropped afterwards.

Tests marked ``postgres`` need the server at ``SEALBOT_TEST_PG_URL`` (default
``postgresql+asyncpg://postgres@127.0.0.1:5432/test``). When it is unreachable they FAIL in CI
(``CI=true``), where the server is part of the job, and skip with the reason elsewhere.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.testing import create_schema

PG_URL = os.environ.get("SEALBOT_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


async def _reachable(url: str) -> str | None:
    """None when the server answers, else why not."""
    import asyncpg  # type: ignore[import-untyped]

    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        conn = await asyncpg.connect(plain, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"PostgreSQL at {make_url(url).render_as_string()} is unreachable: {exc!r}"
    await conn.close()
    return None


async def require_postgres() -> None:
    reason = await _reachable(PG_URL)
    if reason is None:
        return
    if in_ci():
        pytest.fail(reason + " (CI=true: the PostgreSQL service must be running)")
    pytest.skip(reason)


def schema_engine(schema: str, **kw: object) -> AsyncEngine:
    """An engine whose connections see ``schema`` first, so tables land in it."""
    return create_async_engine(
        PG_URL, connect_args={"server_settings": {"search_path": schema}}, pool_pre_ping=True, **kw
    )


@asynccontextmanager
async def fresh_schema() -> AsyncIterator[str]:
    """Create a uniquely named schema with the bot's tables in it; drop it afterwards."""
    await require_postgres()
    schema = f"sealbot_test_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(PG_URL)
    try:
        async with admin.begin() as conn:
            await conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        tables = schema_engine(schema)
        await create_schema(tables)
        await tables.dispose()
        yield schema
    finally:
        async with admin.begin() as conn:
            await conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await admin.dispose()


@asynccontextmanager
async def fresh_databases(count: int, prefix: str = "sealbot_test") -> AsyncIterator[list[str]]:
    """``count`` new PostgreSQL databases on the test server (their URLs), dropped afterwards."""
    await require_postgres()
    names = [f"{prefix}_{uuid.uuid4().hex[:10]}" for _ in range(count)]
    admin = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            for name in names:
                await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        yield [make_url(PG_URL).set(database=name).render_as_string(hide_password=False) for name in names]
    finally:
        async with admin.connect() as conn:
            for name in names:
                await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()
