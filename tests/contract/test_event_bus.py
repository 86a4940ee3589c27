"""One contract for every event bus backend: in-process, PostgreSQL LISTEN/NOTIFY, Redis pub/sub.

The shared backends are tested as two workers would use them: two bus instances, each with its
own connections, one publishing and one subscribed. The reconnect tests cut the listening
connection on the server side (``pg_terminate_backend``, ``CLIENT KILL``), as a database
restart or a network cut would.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from dbkit.bus import BusError, EventBus, InProcessBus, PostgresBus, RedisBus
from tests.contract.postgres import PG_URL, in_ci, require_postgres

REDIS_URL = os.environ.get("SEALBOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


async def _require_redis() -> None:
    import redis.asyncio as aioredis
    import redis.exceptions

    client = aioredis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        await client.ping()
    except (OSError, redis.exceptions.RedisError) as exc:
        reason = f"Redis at {REDIS_URL} is unreachable: {exc!r}"
        if in_ci():
            pytest.fail(reason + " (CI=true: .ci/run starts Redis)")
        pytest.skip(reason)
    finally:
        await client.aclose()


@dataclass
class Workers:
    """Two bus instances as two workers hold them, and a way to cut one's listener."""

    publisher: EventBus
    subscriber: EventBus
    cut_listener: Callable[[EventBus], object] | None
    topic_prefix: str

    def topic(self, name: str) -> str:
        # Unique per test: other test runs may share the server.
        return self.topic_prefix + name


async def _terminate_pg_listener(bus: EventBus) -> None:
    assert isinstance(bus, PostgresBus)
    admin = create_async_engine(PG_URL)
    try:
        async with admin.begin() as conn:
            killed = await conn.execute(
                sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :n"),
                {"n": bus.listener_name},
            )
            assert killed.all() == [(True,)]
    finally:
        await admin.dispose()


async def _kill_redis_listener(bus: EventBus) -> None:
    import redis.asyncio as aioredis

    assert isinstance(bus, RedisBus)
    client = aioredis.from_url(REDIS_URL)
    try:
        clients = await client.client_list()
        ids = [entry["id"] for entry in clients if entry.get("name") == bus.listener_name]
        assert len(ids) == 1
        await client.client_kill_filter(_id=ids[0])
    finally:
        await client.aclose()


@pytest.fixture(params=["in-process", "postgresql", "redis"])
async def workers(request: pytest.FixtureRequest) -> AsyncIterator[Workers]:
    async for pair in _workers(request.param):
        yield pair


@pytest.fixture(params=["postgresql", "redis"])
async def shared_workers(request: pytest.FixtureRequest) -> AsyncIterator[Workers]:
    """Only the backends that hold a connection to a server."""
    async for pair in _workers(request.param):
        yield pair


async def _workers(kind: str) -> AsyncIterator[Workers]:
    prefix = f"test-{uuid.uuid4().hex[:8]}-"
    if kind == "in-process":
        bus = InProcessBus()
        yield Workers(bus, bus, None, prefix)
        return
    if kind == "postgresql":
        await require_postgres()
        first: EventBus = PostgresBus(PG_URL, max_pause=0.5)
        second: EventBus = PostgresBus(PG_URL, max_pause=0.5)
        cut: Callable[[EventBus], object] = _terminate_pg_listener
    else:
        await _require_redis()
        first, second = RedisBus(REDIS_URL, max_pause=0.5), RedisBus(REDIS_URL, max_pause=0.5)
        cut = _kill_redis_listener
    await first.start()
    await second.start()
    try:
        yield Workers(first, second, cut, prefix)
    finally:
        await first.close()
        await second.close()


async def test_a_notification_published_by_one_worker_reaches_another(workers: Workers) -> None:
    assert workers.subscriber.healthy
    subscription = workers.subscriber.subscribe(workers.topic("bridge.job"))
    await workers.publisher.publish(workers.topic("bridge.job"), {"account": "a1", "job": "j1"})
    received = await subscription.get(wait_seconds=1.0)
    assert received is not None
    assert received.topic == workers.topic("bridge.job")
    assert received.data == {"account": "a1", "job": "j1"}
    subscription.close()


async def test_subscribers_hear_only_their_topics_in_order(workers: Workers) -> None:
    wanted = workers.subscriber.subscribe(workers.topic("chat.wake"))
    for n in range(5):
        await workers.publisher.publish(workers.topic("other"), {"n": n})
        await workers.publisher.publish(workers.topic("chat.wake"), {"n": n, "text": "新消息"})
    got = [await wanted.get(wait_seconds=1.0) for _ in range(5)]
    assert [item.data for item in got if item is not None] == [{"n": n, "text": "新消息"} for n in range(5)]
    assert await wanted.get(wait_seconds=0.2) is None
    wanted.close()


async def test_a_closed_subscription_ends_its_iteration(workers: Workers) -> None:
    subscription = workers.subscriber.subscribe(workers.topic("feed"))

    async def drain() -> list[dict[str, object]]:
        return [dict(item.data) async for item in subscription]

    reader = asyncio.create_task(drain())
    await workers.publisher.publish(workers.topic("feed"), {"n": 1})
    await asyncio.sleep(0.3)
    subscription.close()
    assert await asyncio.wait_for(reader, 2) == [{"n": 1}]


async def test_an_oversized_notification_is_refused(workers: Workers) -> None:
    with pytest.raises(BusError):
        await workers.publisher.publish(workers.topic("big"), {"blob": "x" * 10_000})


async def test_the_listener_reconnects_by_itself_after_its_connection_is_cut(shared_workers: Workers) -> None:
    workers = shared_workers
    assert workers.cut_listener is not None
    subscription = workers.subscriber.subscribe(workers.topic("after-cut"))
    await workers.cut_listener(workers.subscriber)  # type: ignore[misc]
    for _ in range(100):
        if not workers.subscriber.healthy:
            break
        await asyncio.sleep(0.05)
    assert not workers.subscriber.healthy, "readiness must report the lost connection"
    for _ in range(100):
        if workers.subscriber.healthy:
            break
        await asyncio.sleep(0.05)
    assert workers.subscriber.healthy
    await workers.publisher.publish(workers.topic("after-cut"), {"ok": True})
    received = await subscription.get(wait_seconds=2.0)
    assert received is not None
    assert received.data == {"ok": True}
    subscription.close()


async def test_an_idle_redis_listener_takes_its_pings_answers_for_no_notification(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The listener pings Redis every 5 s while idle; the answers are not notifications."""
    await _require_redis()
    bus = RedisBus(REDIS_URL, prefix=f"test-{uuid.uuid4().hex[:8]}:")
    await bus.start()
    try:
        with caplog.at_level(logging.WARNING, logger="dbkit.bus"):
            await asyncio.sleep(5.5)
        assert bus.healthy
    finally:
        await bus.close()
    assert [r.getMessage() for r in caplog.records] == []
