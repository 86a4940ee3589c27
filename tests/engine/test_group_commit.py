"""The embedded store's batches: operations queued together share one transaction, and one
operation's refusal takes back its own writes only. They run on the event loop's own thread,
except where that would make the loop wait: a lock another connection holds sends the batch to
the writer thread, which also does the checkpoints."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bot.engine import sqlite_store
from bot.engine.sqlite_store import ATOMIC, READ, SqliteConversationStore
from bot.errors import VersionConflict
from bot.testing import create_schema
from dbkit.engine import make_engine
from tests.contract.test_conversation_store import LEASE, T0, A, B, put


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


def _thread_of(name: str) -> Callable[[sqlite3.Connection], int]:
    """A write that answers the thread it ran on."""
    write = _cursor_write(name)

    def run(conn: sqlite3.Connection) -> int:
        write(conn)  # type: ignore[operator]
        return threading.get_ident()

    return run


async def test_operations_queued_in_one_loop_iteration_run_on_the_loops_thread_in_one_commit(
    store: SqliteConversationStore,
) -> None:
    before = store.write_transactions
    threads = await asyncio.gather(*(store._run(_thread_of(f"n{i}"), mode=ATOMIC) for i in range(20)))
    assert set(threads) == {threading.get_ident()}
    assert store.write_transactions - before == 1
    assert store.writer_usage().busy_seconds == 0  # the writer thread had nothing to do


async def test_a_burst_runs_in_batches_of_at_most_max_batch_operations(
    store: SqliteConversationStore,
) -> None:
    # one batch holds the loop for its own time only; the rest waits for the next iteration
    before = store.write_transactions
    count = 2 * sqlite_store.MAX_BATCH + 10
    names = await asyncio.gather(*(store._run(_cursor_write(f"b{i}"), mode=ATOMIC) for i in range(count)))  # type: ignore[arg-type]
    assert names == [f"b{i}" for i in range(count)]
    assert store.write_transactions - before == 3


async def test_a_write_lock_held_elsewhere_sends_the_batch_to_the_writer_thread_and_never_blocks_the_loop(
    store: SqliteConversationStore, tmp_path: Path
) -> None:
    other = sqlite3.connect(tmp_path / "bot.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another module's write transaction, still open
    other.execute(
        "INSERT INTO event_cursors (name, position, updated_at) VALUES ('other', 1, '2026-11-30 00:00:00')"
    )
    waiting = store._run(_thread_of("mine"), mode=ATOMIC)
    # the loop goes on turning while the batch waits for the lock in the writer thread
    started = time.monotonic()
    for _ in range(20):
        await asyncio.sleep(0.01)
    assert time.monotonic() - started < 2.0
    assert not waiting.done()
    # a read is answered meanwhile, on the loop: in WAL mode readers never wait for writers
    assert await store.cursor("other") == 0
    other.execute("COMMIT")
    other.close()
    ran_on = await asyncio.wait_for(waiting, timeout=10)
    assert ran_on != threading.get_ident()
    assert await store.cursor("mine") == 1
    assert await store.cursor("other") == 1
    # and once the lock is free the loop's own connection writes again
    assert await store._run(_thread_of("later"), mode=ATOMIC) == threading.get_ident()


async def test_the_writer_thread_checkpoints_what_the_loop_wrote(
    store: SqliteConversationStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_store, "CHECKPOINT_EVERY", 0.0)

    def in_database_file() -> list[str]:
        # ``immutable`` reads the database file alone, not the WAL: what a checkpoint copied
        reader = sqlite3.connect(f"file:{tmp_path / 'bot.db'}?immutable=1", uri=True)
        try:
            return [row[0] for row in reader.execute("SELECT name FROM event_cursors")]
        except sqlite3.OperationalError:  # not even the schema there yet
            return []
        finally:
            reader.close()

    await store._run(_cursor_write("checkpointed"), mode=ATOMIC)  # type: ignore[arg-type]
    for _ in range(200):
        if "checkpointed" in in_database_file():
            break
        await asyncio.sleep(0.01)
    assert "checkpointed" in in_database_file()


async def test_a_loop_connection_that_cannot_be_opened_leaves_every_batch_to_the_writer_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/bot.db")
    await create_schema(engine)
    opened = sqlite_store._connect

    def refuse_the_loops(path: str, *, timeout: float, set_wal: bool) -> sqlite3.Connection:
        if timeout == 0:  # the loop's connection, the one that never waits
            raise sqlite3.OperationalError("unable to open database file")  # e.g. out of descriptors
        return opened(path, timeout=timeout, set_wal=set_wal)

    monkeypatch.setattr(sqlite_store, "_connect", refuse_the_loops)
    store = SqliteConversationStore(engine)
    try:
        with caplog.at_level("WARNING", logger="sealbot.store"):
            ran_on = await asyncio.gather(*(store._run(_thread_of(f"w{i}"), mode=ATOMIC) for i in range(5)))
            # slower, never wrong: every write done, in the writer thread, reads too
            assert threading.get_ident() not in ran_on
            assert [await store.cursor(f"w{i}") for i in range(5)] == [1] * 5
            await put(store, A, "still answered")
            assert [m.reply.text for m in await store.claim_due(T0, limit=10, lease=LEASE)] == [
                "still answered"
            ]
        warnings = [r for r in caplog.records if "writer thread" in r.getMessage()]
        assert len(warnings) == 1  # said once, not at every operation
        usage = store.writer_usage()
        assert usage.loop_seconds == 0
        assert usage.busy_seconds > 0
    finally:
        await store.close()
        await engine.dispose()


async def test_a_second_event_loop_is_served_by_the_writer_thread_while_the_first_has_the_store(
    store: SqliteConversationStore,
) -> None:
    await store._run(_thread_of("first"), mode=ATOMIC)  # this loop has the store now

    def elsewhere() -> tuple[int, int]:
        async def use() -> tuple[int, int]:
            return await store._run(_thread_of("second"), mode=ATOMIC), threading.get_ident()

        return asyncio.run(use())

    ran_on, caller = await asyncio.to_thread(elsewhere)
    assert ran_on not in (caller, threading.get_ident())  # the writer thread
    assert await store.cursor("second") == 1


async def test_a_store_closed_from_another_thread_still_answers_what_its_loop_had_queued(
    store: SqliteConversationStore,
) -> None:
    await store._run(_thread_of("first"), mode=ATOMIC)  # this loop has the store now
    # queued at once (``_run`` hands back the future); the batch that runs them is not yet
    queued = [store._run(_thread_of(f"q{i}"), mode=ATOMIC) for i in range(3)]
    closer = threading.Thread(target=lambda: asyncio.run(store.close()))
    closer.start()
    closer.join(30)  # this loop stands still meanwhile: nothing of its own runs the batch
    ran_on = await asyncio.wait_for(asyncio.gather(*queued), timeout=10)
    assert threading.get_ident() not in ran_on  # the writer thread ran them before it stopped
    reader = sqlite3.connect(store.engine.url.database or "")
    try:
        names = {row[0] for row in reader.execute("SELECT name FROM event_cursors")}
    finally:
        reader.close()
    assert {"q0", "q1", "q2"} <= names


def test_a_new_event_loop_takes_the_store_over_once_the_first_is_closed(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/bot.db")
    asyncio.run(create_schema(engine))
    asyncio.run(engine.dispose())
    store = SqliteConversationStore(engine)
    for name in ("first", "second"):

        async def use(name: str = name) -> int:
            return await store._run(_thread_of(name), mode=ATOMIC)

        assert asyncio.run(use()) == threading.get_ident()
    assert store.write_transactions >= 2
    assert store.writer_usage().busy_seconds == 0
    asyncio.run(store.close())


async def test_the_store_reports_where_its_work_ran_also_after_it_stopped(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/bot.db")
    await create_schema(engine)
    store = SqliteConversationStore(engine)
    before = store.writer_usage()
    for i in range(100):
        await store._run(_cursor_write(f"c{i}"), mode=ATOMIC)  # type: ignore[arg-type]

    def from_another_loop() -> None:
        async def use() -> None:
            for i in range(100):
                await store._run(_cursor_write(f"t{i}"), mode=ATOMIC)  # type: ignore[arg-type]

        asyncio.run(use())

    await asyncio.to_thread(from_another_loop)
    during = store.writer_usage() - before
    assert during.loop_seconds > 0  # this loop's batches
    assert during.busy_seconds > 0  # the other loop's, in the writer thread
    assert during.cpu_seconds > 0
    await store.close()
    after = store.writer_usage()
    # a stopped thread's CPU clock is gone; the figure it had at the end is kept
    assert after.cpu_seconds >= before.cpu_seconds + during.cpu_seconds
    assert after.busy_seconds >= before.busy_seconds + during.busy_seconds
    assert after.loop_seconds >= before.loop_seconds + during.loop_seconds
    await engine.dispose()


# ---- what this process does not remember (``_fresh``) is read from the rows ---------------------


async def test_replies_committed_before_a_restart_are_claimed_with_their_text(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/bot.db")
    await create_schema(engine)
    before = SqliteConversationStore(engine)
    await put(before, A, "one", "two")
    await put(before, B, "three")
    await before.close()
    after = SqliteConversationStore(engine)  # remembers nothing of what ``before`` committed
    claimed = await after.claim_due(T0, limit=10, lease=LEASE)
    assert sorted(m.reply.text for m in claimed) == ["one", "three"]
    await after.close()
    await engine.dispose()
