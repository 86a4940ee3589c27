"""The Alembic migrations create exactly the schema the models describe (bot and platform)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from bot import migrate as bot_migrate
from bot.db import Base as BotBase
from bot.model_registry import import_all_models as import_bot_models
from dbkit.engine import make_engine
from seal_platform import migrate as platform_migrate
from seal_platform.db import Base as PlatformBase


def _differences(connection: Connection, metadata: Any, version_table: str) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "version_table": version_table}
    )
    return [d for d in compare_metadata(context, metadata) if not _is_version_table(d, version_table)]


def _is_version_table(diff: Any, version_table: str) -> bool:
    return isinstance(diff, tuple) and diff[0] == "remove_table" and diff[1].name == version_table


@pytest.mark.parametrize("which", ["bot", "platform"])
async def test_migrations_at_head_match_the_models(tmp_path: Path, which: str) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/{which}.db"
    if which == "bot":
        import_bot_models()
        await bot_migrate.upgrade(url)
        metadata, version_table = BotBase.metadata, bot_migrate.VERSION_TABLE
    else:
        platform_migrate.import_all_models()
        await platform_migrate.upgrade(url)
        metadata, version_table = PlatformBase.metadata, platform_migrate.VERSION_TABLE
    engine = make_engine(url)
    async with engine.connect() as conn:
        diffs = await conn.run_sync(_differences, metadata, version_table)
    await engine.dispose()
    assert diffs == [], "models changed without a migration: run scripts/make_migration.py"


@pytest.mark.parametrize("which", ["bot", "platform"])
async def test_migrations_are_idempotent_on_restart(tmp_path: Path, which: str) -> None:
    """Every start runs the migrations: a second run changes nothing and stays at head."""
    url = f"sqlite+aiosqlite:///{tmp_path}/again.db"
    migrate = bot_migrate if which == "bot" else platform_migrate
    await migrate.upgrade(url)
    first = await _schema_and_version(url, migrate.VERSION_TABLE)
    await migrate.upgrade(url)
    assert await _schema_and_version(url, migrate.VERSION_TABLE) == first
    head = ScriptDirectory.from_config(migrate.alembic_config(url)).get_current_head()
    assert first[1] == head


async def _schema_and_version(url: str, version_table: str) -> tuple[list[str], str]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda sync: sorted(sa.inspect(sync).get_table_names()))
            version_num = sa.table(version_table, sa.column("version_num"))
            version = (await conn.execute(sa.select(version_num.c.version_num))).scalar_one()
    finally:
        await engine.dispose()
    return tables, version
