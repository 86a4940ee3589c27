from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.engine.flow import FlowRegistry
from bot.testing import ChatHarness
from tests.contract.postgres import PG_URL
from tests.engine.flows_for_tests import FORM
from tests.engine.transcript import EN, ZH, Lang

LOCALES = Path(__file__).parent / "locales"

__all__ = ["LOCALES", "PG_URL"]


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/bot.db"


@pytest.fixture
def flows() -> FlowRegistry:
    """The flows of ``chat``; a test file overrides this fixture to chat with flows of its own."""
    return FlowRegistry([FORM])


@pytest.fixture
async def chat(db_url: str, flows: FlowRegistry) -> AsyncIterator[ChatHarness]:
    harness = await ChatHarness.create(flows=flows, db_url=db_url, catalog_dirs=[LOCALES])
    yield harness
    await harness.close()


@pytest.fixture(params=[ZH, EN], ids=lambda lang: lang.code)
def lang(request: pytest.FixtureRequest) -> Lang:
    value: Lang = request.param
    return value
