"""Alembic environment of the bot's database (run through ``bot.migrate``)."""

from __future__ import annotations

from alembic import context

from bot.db import Base
from bot.model_registry import import_all_models

import_all_models()
config = context.config
target_metadata = Base.metadata
version_table = config.attributes.get("version_table", "alembic_version_bot")
connection = config.attributes.get("connection")

if connection is None:
    raise RuntimeError("run migrations through bot.migrate (it passes the connection)")

context.configure(
    connection=connection,
    target_metadata=target_metadata,
    version_table=version_table,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
