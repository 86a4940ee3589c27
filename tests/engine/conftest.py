from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.engine.flow import FlowRegistry
from bot.testing import ChatHarness
from tests.engine.flows_for_tests import FORM

LOCALES = Path(__file__).parent / "locales"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/bot.db"


@pytest.fixture
async def chat(db_url: str) -> AsyncIterator[ChatHarness]:
    harness = await ChatHarness.create(flows=FlowRegistry([FORM]), db_url=db_url, catalog_dirs=[LOCALES])
    yield harness
    await harness.close()


PG_URL = os.environ.get("SEALBOT_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
