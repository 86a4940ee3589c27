"""Applying a package's Alembic migrations to a database URL, on its own version table."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

from dbkit.engine import make_engine


def alembic_config(url: str, script_location: Path, version_table: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("sqlalchemy.url", url)
    config.attributes["version_table"] = version_table
    return config


async def upgrade(url: str, script_location: Path, version_table: str) -> None:
    """Bring the database to head (a no-op when it is there already)."""
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Workers on several hosts start at once: one migrates, the others wait for it
                # and then find the schema at head (the lock ends with this transaction).
                await conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": version_table}
                )
            await conn.run_sync(_upgrade, alembic_config(url, script_location, version_table))
    finally:
        await engine.dispose()


def _upgrade(connection: Connection, config: Config) -> None:
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
