"""Migrations upgrade a database that already holds data, on SQLite and on PostgreSQL.

A migration that passes on an empty database can still fail on a live one: a NOT NULL column
added without a default, a type change the data does not fit, a constraint old rows break.
Each database is brought to its first revision, every table gets a row (its required columns
filled by type, keys shared so foreign keys resolve), then it is upgraded to head: every row
must still be there, and the schema at head must be exactly what the models describe.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from bot import migrate as bot_migrate
from bot.db import Base as BotBase
from bot.model_registry import import_all_models as import_bot_models
from dbkit.engine import make_engine
from seal_platform import migrate as platform_migrate
from seal_platform.db import Base as PlatformBase
from tests.contract.postgres import fresh_databases

SAMPLE_TIME = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _sample(column: sa.Column[Any]) -> Any:
    """A value of the column's type; every key column gets "1" (or 1) so references resolve."""
    kind = column.type
    if isinstance(kind, sa.Enum):
        return kind.enums[0]
    if isinstance(kind, sa.Boolean):
        return False
    if isinstance(kind, sa.Integer | sa.Numeric):
        return 1
    if isinstance(kind, sa.DateTime):
        return SAMPLE_TIME
    if isinstance(kind, sa.Date):
        return date(2026, 1, 2)
    if isinstance(kind, sa.JSON):
        return {}
    if isinstance(kind, sa.LargeBinary):
        return b"1"
    return "1"


def _fill(connection: Connection) -> dict[str, int]:
    """One row in every table (required columns only) in foreign-key order; the counts.

    Direct table writes, allowed here: this tests the migrations themselves, on the schema of
    an old revision that no product code of today can write to."""
    metadata = sa.MetaData()
    metadata.reflect(connection)
    counts: dict[str, int] = {}
    for table in metadata.sorted_tables:
        if table.name.startswith("alembic_version"):
            continue
        row = {
            column.name: _sample(column)
            for column in table.columns
            if not column.nullable or column.primary_key or column.foreign_keys
        }
        connection.execute(table.insert().values(**row))
        counts[table.name] = 1
    return counts


def _counts(connection: Connection, names: list[str]) -> dict[str, int]:
    existing = set(sa.inspect(connection).get_table_names())
    return {
        name: connection.execute(sa.select(sa.func.count()).select_from(sa.table(name))).scalar_one()
        for name in names
        if name in existing
    }


def _differences(connection: Connection, metadata: sa.MetaData, version_table: str) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "version_table": version_table}
    )
    return [
        diff
        for diff in compare_metadata(context, metadata)
        if not (isinstance(diff, tuple) and diff[0] == "remove_table" and diff[1].name == version_table)
    ]


def _upgrade_with_data(
    connection: Connection, config: Config, metadata: sa.MetaData, version_table: str
) -> tuple[dict[str, int], dict[str, int], list[Any]]:
    config.attributes["connection"] = connection
    first = ScriptDirectory.from_config(config).get_base()
    assert first is not None, "a migration chain has one first revision"
    command.upgrade(config, first)
    before = _fill(connection)
    command.upgrade(config, "head")
    after = _counts(connection, list(before))
    return before, after, _differences(connection, metadata, version_table)


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/upgrade.db"
        return
    async with fresh_databases(1, "sealbot_mig") as (url,):
        yield url


@pytest.mark.parametrize("which", ["bot", "platform"])
async def test_upgrade_from_the_first_revision_keeps_every_row(database_url: str, which: str) -> None:
    if which == "bot":
        import_bot_models()
        config, metadata, version_table = (
            bot_migrate.alembic_config(database_url),
            BotBase.metadata,
            bot_migrate.VERSION_TABLE,
        )
    else:
        platform_migrate.import_all_models()
        config, metadata, version_table = (
            platform_migrate.alembic_config(database_url),
            PlatformBase.metadata,
            platform_migrate.VERSION_TABLE,
        )
    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            before, after, diffs = await conn.run_sync(_upgrade_with_data, config, metadata, version_table)
    finally:
        await engine.dispose()
    assert len(before) >= 5, before
    assert after == {name: 1 for name in after}, "an upgrade lost or duplicated rows"
    assert diffs == [], "models and migrations differ at head"
