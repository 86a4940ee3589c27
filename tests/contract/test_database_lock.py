"""``dbkit.blobs.database_lock`` on PostgreSQL: a session lock never stays behind in the pool."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import create_async_engine

from dbkit.blobs import database_lock
from tests.contract.postgres import PG_URL, require_postgres

pytestmark = pytest.mark.postgres


async def test_a_lock_whose_unlock_failed_is_freed_with_its_session_not_kept_in_the_pool() -> None:
    await require_postgres()
    name = f"test-{uuid.uuid4().hex}"
    failing, other = create_async_engine(PG_URL, pool_size=1), create_async_engine(PG_URL)
    failed = False

    def unlock_fails_once(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        nonlocal failed
        if "pg_advisory_unlock" in statement and not failed:
            failed = True
            raise ConnectionError("the unlock did not reach the server")

    event.listen(failing.sync_engine, "before_cursor_execute", unlock_fails_once)
    try:
        with pytest.raises(ConnectionError):
            async with database_lock(failing, name):
                pass
        assert failed
        # Another process takes the lock at once: the session that held it is gone.
        async with asyncio.timeout(5):
            async with database_lock(other, name):
                pass
    finally:
        await failing.dispose()
        await other.dispose()
