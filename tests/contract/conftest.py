from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.db import make_engine
from bot.engine.store import SqlConversationStore
from bot.testing import create_schema
from tests.contract.postgres import fresh_schema, schema_engine


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlConversationStore]:
    """The same store class on every backend the bot supports; each test gets empty tables."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/contract.db")
        await create_schema(engine)
        yield SqlConversationStore(engine)
        await engine.dispose()
        return
    async with fresh_schema() as schema:
        engine = schema_engine(schema)
        yield SqlConversationStore(engine)
        await engine.dispose()
