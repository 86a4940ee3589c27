"""Applies the platform's Alembic migrations at start (and from ``sealbot migrate``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

from seal_platform.db import make_engine

VERSION_TABLE = "alembic_version_platform"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.set_main_option("sqlalchemy.url", url)
    config.attributes["version_table"] = VERSION_TABLE
    return config


async def upgrade(url: str) -> None:
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade, url)
    finally:
        await engine.dispose()


def _upgrade(connection: Connection, url: str) -> None:
    config = alembic_config(url)
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def import_all_models() -> None:
    """Every platform module that defines tables, so the metadata is complete."""
    import importlib
    import pkgutil

    import seal_platform

    for info in pkgutil.walk_packages(seal_platform.__path__, "seal_platform."):
        if info.name.startswith("seal_platform.migrations"):
            continue
        importlib.import_module(info.name)
