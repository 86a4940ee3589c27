"""Async engines for SQLite files (the embedded default) and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

# Constraint names that Alembic can find again, whichever side declares the tables.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def make_engine(url: str, **pool: Any) -> AsyncEngine:
    """``pool``: SQLAlchemy pool arguments (``pool_size``, ``max_overflow``, ``pool_timeout``)."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30}, **pool)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL lets readers go on while one connection writes; NORMAL syncs at checkpoints,
            # which keeps every commit across a process crash (not across a power cut).
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_async_engine(url, pool_pre_ping=True, **pool)


async def why_unreachable(url: str, *, connect_seconds: float = 10.0) -> str | None:
    """None when the PostgreSQL database at ``url`` answers within ``connect_seconds``, else why
    not, in one line that names the URL without its password. A SQLite file is not asked: it
    needs no server, and what can be wrong with it shows when it is migrated."""
    if not url.startswith("postgresql"):
        return None
    shown = make_url(url).render_as_string(hide_password=True)
    engine = create_async_engine(url, connect_args={"timeout": connect_seconds}, poolclass=sa.NullPool)
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
    except (OSError, TimeoutError, SQLAlchemyError) as exc:
        reason = exc.orig if isinstance(exc, sa.exc.DBAPIError) and exc.orig is not None else exc
        return (
            f"the database at {shown} does not answer: {str(reason).splitlines()[0] or type(reason).__name__}"
        )
    finally:
        await engine.dispose()
    return None
