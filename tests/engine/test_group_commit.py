"""The embedded store's writer: operations queued together share one transaction, and one
operation's refusal takes back its own writes only."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.engine.sqlite_store import ATOMIC, READ, SqliteConversationStore
from bot.errors import VersionConflict
from bot.testing import create_schema
from dbkit.engine import make_engine


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteConversationStore]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/bot.db")
    await create_schema(engine)
    fast = SqliteConversationStore(engine)
    yield fast
    await fast.close()
    await engine.dispose()


def _cursor_write(name: str, *, then_refuse: bool = False) -> object:
    def write(conn: sqlite3.Connection) -> str:
        conn.execute(
            "INSERT INTO event_cursors (name, position, updated_at) VALUES (?, 1, '2026-11-30 00:00:00')",
            (name,),
        )
        if then_refuse:  # a second statement that fails, after the first one wrote
            raise sqlite3.IntegrityError("refused after writing")
        return name

    return write


async def test_an_operation_refused_after_writing_takes_back_its_own_writes_only(
    store: SqliteConversationStore,
) -> None:
    before = store.write_transactions
    results = await asyncio.gather(
        store._run(_cursor_write("kept-1"), mode=ATOMIC),  # type: ignore[arg-type]
        store._run(_cursor_write("refused", then_refuse=True), mode=ATOMIC),  # type: ignore[arg-type]
        store._run(_cursor_write("kept-2"), mode=ATOMIC),  # type: ignore[arg-type]
        return_exceptions=True,
    )
    assert results[0] == "kept-1"
    assert isinstance(results[1], VersionConflict)
    assert results[2] == "kept-2"
    names = await store._run(
        lambda conn: sorted(r[0] for r in conn.execute("SELECT name FROM event_cursors")), mode=READ
    )
    assert names == ["kept-1", "kept-2"]
    # Queued together, they were written together (the refusal cost one extra attempt).
    assert store.write_transactions - before == 1


async def test_the_writer_reports_its_busy_and_cpu_time_also_after_it_stopped(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/bot.db")
    await create_schema(engine)
    store = SqliteConversationStore(engine)
    before = store.writer_usage()
    for i in range(200):
        await store._run(_cursor_write(f"c{i}"), mode=ATOMIC)  # type: ignore[arg-type]
    during = store.writer_usage() - before
    assert during.busy_seconds > 0
    assert during.cpu_seconds > 0
    await store.close()
    after = store.writer_usage()
    # a stopped thread's CPU clock is gone; the figure it had at the end is kept
    assert after.cpu_seconds >= before.cpu_seconds + during.cpu_seconds
    assert after.busy_seconds >= before.busy_seconds + during.busy_seconds
    await engine.dispose()
