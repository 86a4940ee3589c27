"""Pooled PostgreSQL connections: one the server dropped while it sat idle is replaced before
anyone uses it; one in use moments ago is not pinged (the message path's checkouts are
back-to-back), and should the server drop that one, a single use fails and the pool recovers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dbkit.engine import make_engine
from tests.contract.postgres import PG_URL, require_postgres

pytestmark = pytest.mark.postgres


async def _backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one())


async def _terminate(pid: int) -> None:
    admin = make_engine(PG_URL)
    try:
        async with admin.connect() as conn:
            # waits up to 5 s for the backend to be gone
            await conn.execute(sa.text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
    finally:
        await admin.dispose()


@asynccontextmanager
async def _dropped_connection(ping_after_idle: float) -> AsyncIterator[tuple[AsyncEngine, int]]:
    """An engine with one pooled connection, which the server has just dropped; and the
    backend pid that connection had."""
    await require_postgres()
    engine = make_engine(PG_URL, ping_after_idle=ping_after_idle, pool_size=1, max_overflow=0)
    try:
        first = await _backend_pid(engine)
        await _terminate(first)
        yield engine, first
    finally:
        await engine.dispose()


def test_a_connection_the_server_dropped_while_idle_is_replaced_before_use() -> None:
    async def scenario() -> tuple[int, int]:
        async with _dropped_connection(ping_after_idle=0.2) as (engine, first):
            await asyncio.sleep(0.3)  # idle long enough to be pinged at the next checkout
            return first, await _backend_pid(engine)  # no error: the ping found it dead

    first, second = asyncio.run(scenario())
    assert second != first


def test_a_connection_used_moments_ago_is_not_pinged_and_one_failure_resets_the_pool() -> None:
    async def scenario() -> tuple[int, int]:
        async with _dropped_connection(ping_after_idle=60.0) as (engine, first):
            # Not pinged (used moments ago): this use meets the dropped connection ...
            with pytest.raises(sa.exc.DBAPIError) as failed:
                await _backend_pid(engine)
            assert failed.value.connection_invalidated
            # ... and the pool has let it go: the next use gets a new one.
            return first, await _backend_pid(engine)

    first, second = asyncio.run(scenario())
    assert second != first
