"""Async engines for SQLite files (the embedded default) and PostgreSQL."""

from __future__ import annotations

import asyncio
import sqlite3
import time
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


def sqlite_file(url: str) -> str | None:
    """The file of a SQLite URL (None: not SQLite, or in memory)."""
    if not url.startswith("sqlite"):
        return None
    path = url.split("///", 1)[-1]
    return path if path and path != ":memory:" else None


def shown_url(url: str) -> str:
    """``url`` as an operator may read it: without its password."""
    return make_url(url).render_as_string(hide_password=True)


# A pooled connection checked in moments ago is alive; one that sat idle may have been dropped
# by a database restart, a failover or a firewall. Only those are pinged when checked out.
# SQLAlchemy's ``pool_pre_ping`` pings every checkout, three round trips on asyncpg (``BEGIN``,
# ``;``, ``ROLLBACK``): a tenth of the PostgreSQL message path's CPU, for connections that
# were in use milliseconds before. A database restart takes longer than this, so a connection
# used before it is pinged after it.
PING_AFTER_IDLE_SECONDS = 1.0
_LAST_USED = "sealbot_last_used"


def _ping_after_idle(engine: AsyncEngine, idle_seconds: float) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    @event.listens_for(sync_engine, "checkin")
    def _used(_dbapi_connection: Any, record: Any) -> None:
        record.info[_LAST_USED] = time.monotonic()

    @event.listens_for(sync_engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get(_LAST_USED, 0.0) < idle_seconds:
            return
        try:
            sync_engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # whatever the driver raises: the connection is unusable
            # The pool discards this connection and checks out another, or connects anew.
            raise sa.exc.DisconnectionError(f"ping after idle failed: {exc}") from exc


def make_engine(url: str, *, ping_after_idle: float = PING_AFTER_IDLE_SECONDS, **pool: Any) -> AsyncEngine:
    """``pool``: SQLAlchemy pool arguments (``pool_size``, ``max_overflow``, ``pool_timeout``).
    ``ping_after_idle``: a server connection idle at least this long is pinged before use."""
    if url.startswith("sqlite"):
        path = sqlite_file(url)
        if path is not None:
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
    engine = create_async_engine(url, **pool)
    _ping_after_idle(engine, ping_after_idle)
    return engine


async def why_unreachable(url: str, *, connect_seconds: float = 10.0) -> str | None:
    """None when the database at ``url`` can be used, else why not, in one line that names it
    (a URL without its password). PostgreSQL: it answers within ``connect_seconds``. SQLite:
    its file can be created where it is asked for, and written (a missing mount, a read-only
    directory)."""
    if url.startswith("sqlite"):
        return await asyncio.to_thread(_sqlite_unusable, url)
    if not url.startswith("postgresql"):
        return None
    shown = shown_url(url)
    engine = create_async_engine(url, connect_args={"timeout": connect_seconds}, poolclass=sa.NullPool)
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
    except (OSError, TimeoutError, SQLAlchemyError) as exc:
        reason = exc.orig if isinstance(exc, sa.exc.DBAPIError) and exc.orig is not None else exc
        text = str(reason).splitlines()[0] if str(reason) else type(reason).__name__
        # An error with a SQLSTATE came from the server: it answered, and said no (a database
        # that does not exist, a refused password), which the operator fixes differently.
        if getattr(reason, "sqlstate", None):
            return f"the database server at {shown} refuses the connection: {text}"
        return f"the database at {shown} does not answer: {text}"
    finally:
        await engine.dispose()
    return None


def _sqlite_unusable(url: str) -> str | None:
    path = sqlite_file(url)
    if path is None:
        return None
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=10)
        try:
            # Takes the write lock and lets go at once: proves the file can be written.
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
        finally:
            conn.close()
    except (OSError, sqlite3.Error) as exc:
        return f"the database file {path} cannot be used: {exc}"
    return None
