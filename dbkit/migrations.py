"""Applying a package's Alembic migrations to a database URL, on its own version table."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from dbkit.engine import make_engine, shown_url


def alembic_config(url: str, script_location: Path, version_table: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("sqlalchemy.url", url)
    config.attributes["version_table"] = version_table
    return config


async def upgrade(
    url: str, script_location: Path, version_table: str, *, attributes: Mapping[str, Any] | None = None
) -> None:
    """Bring the database to head (a no-op when it is there already). ``attributes`` reach the
    migrations as ``context.config.attributes`` (e.g. a key a data migration needs)."""
    engine = make_engine(url)
    config = alembic_config(url, script_location, version_table)
    config.attributes.update(attributes or {})
    try:
        async with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Workers on several hosts start at once: one migrates, the others wait for it
                # and then find the schema at head (the lock ends with this transaction).
                await conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": version_table}
                )
            await conn.run_sync(_upgrade, config)
    except (SQLAlchemyError, OSError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise MigrationFailed(f"migrating the database at {shown_url(url)} failed: {first}") from exc
    finally:
        await engine.dispose()


class MigrationError(Exception):
    """A database this release could not bring to its schema; the message names it."""


class UnknownRevision(MigrationError):
    """The database was migrated by a release that has migrations this one does not (a
    rollback of the code without one of the database): nothing can be applied or trusted."""


class MigrationFailed(MigrationError):
    """A migration's statements failed (the cause is chained)."""


def _upgrade(connection: Connection, config: Config) -> None:
    config.attributes["connection"] = connection
    at = MigrationContext.configure(
        connection, opts={"version_table": config.attributes["version_table"]}
    ).get_current_revision()
    if at is not None:
        try:
            ScriptDirectory.from_config(config).get_revision(at)
        except CommandError as exc:  # alembic's "Can't locate revision identified by ..."
            raise UnknownRevision(
                f"the database at {shown_url(config.get_main_option('sqlalchemy.url') or '')} is at migration {at!r}, which this release does not have:"
                " a newer release migrated it; run that release again, or restore the database"
                " from before the upgrade"
            ) from exc
    command.upgrade(config, "head")
