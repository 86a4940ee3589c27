"""One message at a time per conversation: in one process, and across workers on PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from bot.engine.flow import FlowRegistry
from bot.engine.locks import ConversationLocks, PostgresAdvisoryLock
from bot.engine.messages import Inbound
from bot.engine.tables import inbound_receipts
from bot.testing import ChatHarness
from tests.contract.postgres import fresh_schema, schema_engine
from tests.engine.conftest import LOCALES
from tests.engine.flows_for_tests import FORM
from tests.engine.probe import Probe, ProbedStore
from tests.engine.transcript import ID_NUMBER, Lang, fill_form


def _probe(chat: ChatHarness, probe: Probe) -> None:
    store = ProbedStore(chat.store.engine, probe)  # type: ignore[attr-defined]
    chat.engine.store = store
    chat.store = store
    chat.dispatcher.store = store


async def test_two_concurrent_messages_from_one_user_are_handled_one_at_a_time_in_order(
    chat: ChatHarness, lang: Lang
) -> None:
    await fill_form(chat, lang, until="age")
    probe = Probe()
    _probe(chat, probe)
    key = chat.key("u1")
    age = Inbound.text_message(key, "m-age", "30", at=chat.clock.now())
    id_number = Inbound.text_message(key, "m-id", ID_NUMBER, at=chat.clock.now())

    first, second = await asyncio.gather(chat.engine.handle(age), chat.engine.handle(id_number))

    # In arrival order: the age was taken as the age, then the ID number as the ID number.
    assert [m.reply.text for m in first] == [lang.step(5, 7, lang.ask_id)]
    assert [m.reply.text for m in second] == [lang.step(6, 7, lang.ask_scan)]
    assert probe.max_in_flight == 1
    assert probe.conflicts == 0
    assert [version for _, version in probe.commits] == sorted(v for _, v in probe.commits)


@pytest.fixture
async def pg_schema() -> AsyncIterator[str]:
    async with fresh_schema() as schema:
        yield schema


async def _workers(schema: str, probe: Probe, *, advisory: bool) -> list[ChatHarness]:
    workers = []
    for _ in range(2):
        db = schema_engine(schema)
        # small pools: the test server allows 100 connections for everything that runs at once
        locks = ConversationLocks(PostgresAdvisoryLock(db, pool_size=8)) if advisory else None
        harness = await ChatHarness.create(
            flows=FlowRegistry([FORM]), db_url="", db=db, locks=locks, catalog_dirs=[LOCALES], schema=False
        )
        _probe(harness, probe)
        workers.append(harness)
    return workers


async def _hammer(workers: list[ChatHarness], users: int, per_user: int, lang: Lang) -> None:
    """Every user asks for help ``per_user`` times, the requests spread over both workers and
    sent all at once; every request is a state change (version + 1) and has a reply."""
    starts = [
        workers[u % 2].engine.handle(Inbound.text_message(workers[0].key(f"u{u}"), f"s{u}", lang.hello))
        for u in range(users)
    ]
    await asyncio.gather(*starts)
    requests = [
        workers[(u + i) % 2].engine.handle(
            Inbound.text_message(workers[0].key(f"u{u}"), f"h{u}-{i}", lang.help, at=workers[0].clock.now())
        )
        for i in range(per_user)
        for u in range(users)
    ]
    results = await asyncio.gather(*requests)
    assert all(results), "every message got its reply"


@pytest.mark.postgres
async def test_two_workers_on_postgres_with_advisory_lock_handle_one_message_at_a_time(
    pg_schema: str, lang: Lang
) -> None:
    probe = Probe()
    workers = await _workers(pg_schema, probe, advisory=True)
    users, per_user = 30, 4  # more conversations at once than either pool has connections
    try:
        await asyncio.wait_for(_hammer(workers, users, per_user, lang), timeout=60)
        assert probe.max_in_flight == 1
        assert probe.conflicts == 0
        for u in range(users):
            row = await workers[1].store.get(workers[0].key(f"u{u}"))
            assert row is not None
            log = await workers[0].store.inbound_log(workers[0].key(f"u{u}"), 100)
            assert len(log) == 1 + per_user  # nothing lost
            assert row.conversation_id
            assert row.state["owner"] == "bot"
        async with workers[0].store.engine.connect() as conn:  # type: ignore[attr-defined]
            versions = dict(
                (
                    await conn.execute(sa.text("SELECT user_id, version FROM conversations ORDER BY user_id"))
                ).all()
            )
            receipts = (
                await conn.execute(sa.select(sa.func.count()).select_from(inbound_receipts))
            ).scalar_one()
        assert set(versions.values()) == {1 + per_user}  # one version per handled message
        assert receipts == users * (1 + per_user)
    finally:
        for worker in workers:
            await worker.close()


@pytest.mark.postgres
async def test_without_the_lock_the_version_check_still_loses_nothing(pg_schema: str, lang: Lang) -> None:
    probe = Probe()
    workers = await _workers(pg_schema, probe, advisory=False)
    users, per_user = 5, 4
    try:
        await asyncio.wait_for(_hammer(workers, users, per_user, lang), timeout=60)
        # The race happened (two workers read the same version) and was caught on write.
        assert probe.max_in_flight > 1
        assert probe.conflicts > 0
        async with workers[0].store.engine.connect() as conn:  # type: ignore[attr-defined]
            versions = {
                v for (v,) in (await conn.execute(sa.text("SELECT version FROM conversations"))).all()
            }
        assert versions == {1 + per_user}
    finally:
        for worker in workers:
            await worker.close()
