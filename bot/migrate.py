"""Applies the bot's Alembic migrations at start (and from ``sealbot migrate``)."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config

from dbkit import migrations

VERSION_TABLE = "alembic_version_bot"


SCRIPTS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    return migrations.alembic_config(url, SCRIPTS, VERSION_TABLE)


async def upgrade(url: str) -> None:
    await migrations.upgrade(url, SCRIPTS, VERSION_TABLE)
