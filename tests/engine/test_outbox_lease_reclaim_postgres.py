"""Several workers on one PostgreSQL outbox: a dead worker's leases are taken back at once by
a live one, and a live worker's leases are never taken (#18: after kill -9 the replies went out
only when the 60 s lease ran out)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from bot.engine.store import OutboxStatus, SqlConversationStore
from tests.contract.postgres import fresh_schema, require_postgres, schema_engine
from tests.contract.test_conversation_store import LEASE, T0, A, B, put

pytestmark = pytest.mark.postgres


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    await require_postgres()
    async with fresh_schema() as name:
        yield name


async def _worker(schema: str) -> SqlConversationStore:
    """A worker as ``sealbot serve`` builds one: its own engine (its own sessions) and store."""
    return SqlConversationStore(schema_engine(schema))


async def _stop(store: SqlConversationStore) -> None:
    await store.close()
    await store.engine.dispose()


async def test_a_live_workers_leases_are_never_taken_back(schema: str) -> None:
    first, second = await _worker(schema), await _worker(schema)
    try:
        await first.reclaim_leases()  # announces itself, as the dispatcher does at start
        (message,) = await put(first, A, "hello")
        assert [m.outbox_id for m in await first.claim_due(T0, limit=5, lease=LEASE)] == [message]
        assert await second.reclaim_leases() == 0
        assert await second.claim_due(T0, limit=5, lease=LEASE) == []
    finally:
        await _stop(first)
        await _stop(second)


async def test_a_killed_workers_leases_go_to_another_worker_at_once(schema: str) -> None:
    dead, alive = await _worker(schema), await _worker(schema)
    try:
        await dead.reclaim_leases()
        await alive.reclaim_leases()
        a1, a2 = await put(dead, A, "a1", "a2")
        (b1,) = await put(dead, B, "b1")
        assert {m.outbox_id for m in await dead.claim_due(T0, limit=5, lease=LEASE)} == {a1, b1}
        # what kill -9 does to its sessions: the server ends them, and the presence lock with them
        async with alive.engine.connect() as conn:
            pids = (
                await conn.execute(
                    sa.text("SELECT pid FROM pg_locks WHERE locktype='advisory' AND granted AND objid=:key"),
                    {"key": _objid(dead.worker_id)},
                )
            ).scalars()
            for pid in pids:
                # with a timeout it returns once the backend is gone, and its locks with it,
                # rather than as soon as the signal is sent
                await conn.execute(sa.text("SELECT pg_terminate_backend(:pid, 10000)"), {"pid": pid})
            await conn.commit()
        assert await alive.reclaim_leases() == 2
        # long before the lease (60 s) would run out, the live worker sends them, in order
        claimed = await alive.claim_due(T0, limit=5, lease=LEASE)
        assert sorted(m.outbox_id for m in claimed) == [a1, b1]
        await alive.mark_sent_many([a1, b1], T0)
        assert [m.outbox_id for m in await alive.claim_due(T0, limit=5, lease=LEASE)] == [a2]
        async with alive.engine.connect() as conn:
            rows = (await conn.execute(sa.text("SELECT id, status FROM outbox ORDER BY id"))).all()
        statuses = {outbox_id: status for outbox_id, status in rows}
        assert statuses == {a1: OutboxStatus.SENT, a2: OutboxStatus.SENDING, b1: OutboxStatus.SENT}
    finally:
        await _stop(dead)
        await _stop(alive)


async def test_a_worker_that_stopped_cleanly_has_its_leases_taken_back_too(schema: str) -> None:
    leaving, staying = await _worker(schema), await _worker(schema)
    try:
        await leaving.reclaim_leases()
        (message,) = await put(leaving, A, "hello")
        await leaving.claim_due(T0, limit=5, lease=LEASE)
        await leaving.close()  # its presence connection closes: it says it has gone
        assert await staying.reclaim_leases() == 1
        assert [m.outbox_id for m in await staying.claim_due(T0, limit=5, lease=LEASE)] == [message]
    finally:
        await leaving.engine.dispose()
        await _stop(staying)


def _objid(worker_id: str) -> int:
    """pg_locks shows the second key of a two-key advisory lock as an unsigned objid."""
    from bot.engine.store import _presence_key

    return _presence_key(worker_id) % 2**32


async def test_a_running_dispatcher_sends_a_stopped_workers_replies_within_seconds(schema: str) -> None:
    import asyncio

    from bot.engine.outbox import OutboxDispatcher
    from bot.engine.ports import SystemClock
    from bot.testing import RecordingSender

    leaving, staying = await _worker(schema), await _worker(schema)
    sender = RecordingSender()
    clock = SystemClock()
    dispatcher = OutboxDispatcher(
        staying, {"telegram": sender}, clock, reclaim_at_start=True, reclaim_every=0.05, idle_poll=0.05
    )
    try:
        await leaving.reclaim_leases()
        (message,) = await put(leaving, A, "hello", at=clock.now())
        # the leaving worker took it for sending (a minute's lease) and then stopped; the other
        # worker's dispatcher starts after the claim, else it may well send the reply first
        assert [m.outbox_id for m in await leaving.claim_due(clock.now(), limit=5, lease=LEASE)] == [message]
        await dispatcher.start()
        await leaving.close()
        # well inside the minute its lease would take (20 s: CI machines are shared and slow)
        for _ in range(400):
            if sender.sent:
                break
            await asyncio.sleep(0.05)
        assert [m.outbox_id for m in sender.sent] == [message]
    finally:
        await dispatcher.stop()
        await leaving.engine.dispose()
        await _stop(staying)
