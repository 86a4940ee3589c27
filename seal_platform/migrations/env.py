"""Alembic environment of the platform's database (run through ``seal_platform.migrate``)."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate import render
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.types import TypeDecorator

from seal_platform.db import Base
from seal_platform.migrate import import_all_models

import_all_models()


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    # Type decorators (UTC-aware timestamps) only convert values in Python: migrations store
    # their database type, so they never import application modules that later change.
    if type_ == "type" and isinstance(obj, TypeDecorator):
        return str(render._repr_type(obj.impl_instance, autogen_context))
    return False


config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through seal_platform.migrate (it passes the connection)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    version_table=config.attributes.get("version_table", "alembic_version_platform"),
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    render_item=render_item,
)
with context.begin_transaction():
    context.run_migrations()
