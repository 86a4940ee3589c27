"""Applies the platform's Alembic migrations at start (and from ``sealbot migrate``)."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config

from dbkit import migrations
from seal_platform.security import FieldCipher

VERSION_TABLE = "alembic_version_platform"


SCRIPTS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    return migrations.alembic_config(url, SCRIPTS, VERSION_TABLE)


async def upgrade(url: str, field_cipher: FieldCipher | None = None) -> None:
    """``field_cipher``: lets a migration that introduces field encryption encrypt the rows
    already stored (without it they stay readable and ``sealbot rotate-keys`` encrypts them)."""
    attributes = {"field_cipher": field_cipher} if field_cipher is not None else {}
    await migrations.upgrade(url, SCRIPTS, VERSION_TABLE, attributes=attributes)


def import_all_models() -> None:
    """Every platform module that defines tables, so the metadata is complete."""
    import importlib
    import pkgutil

    import seal_platform

    for info in pkgutil.walk_packages(seal_platform.__path__, "seal_platform."):
        if info.name.startswith("seal_platform.migrations"):
            continue
        importlib.import_module(info.name)
