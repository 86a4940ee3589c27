from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.engine.sqlite_store import SqliteConversationStore
from bot.engine.store import ConversationStore, SqlConversationStore
from bot.testing import create_schema
from dbkit.engine import make_engine
from tests.contract.postgres import fresh_schema, schema_engine


@pytest.fixture(
    params=["sqlite", "sqlite-group-commit", pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ConversationStore]:
    """Every store the bot ships, on every backend it supports; each test gets empty tables."""
    if request.param.startswith("sqlite"):
        engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/contract.db")
        await create_schema(engine)
        if request.param == "sqlite":
            yield SqlConversationStore(engine)
        else:
            fast = SqliteConversationStore(engine)
            yield fast
            await fast.close()
        await engine.dispose()
        return
    async with fresh_schema() as schema:
        engine = schema_engine(schema)
        yield SqlConversationStore(engine)
        await engine.dispose()
