"""Two workers (two containers in one process) on one PostgreSQL database, talking through the
event bus (PostgreSQL LISTEN/NOTIFY, the default there): what one does reaches the other at
once, not on its next sweep. Each test stops the part of worker B that could do the work itself
(its outbox dispatcher, ...), and B's sweeps are set to 30 s, so only the bus can explain a
prompt answer on B."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from bot.app import Container, build_container
from bot.platform_events import CURSOR
from bot.settings import Settings
from dbkit.bus import PostgresBus, RedisBus
from seal_platform.events import publish
from tests.contract.postgres import fresh_databases
from tests.contract.test_event_bus import REDIS_URL
from tests.contract.test_event_bus import _require_redis as require_redis

pytestmark = pytest.mark.postgres

SLOW_SWEEP = 30.0


def worker_settings(bot_url: str, platform_url: str, data_dir: Path, **more: Any) -> Settings:
    """One worker's settings on the two shared databases, its sweeps slowed to ``SLOW_SWEEP``."""
    return Settings(
        database_url=bot_url,
        platform_database_url=platform_url,
        data_dir=data_dir,
        public_base_url="http://127.0.0.1:8000",
        web_poll_sweep_seconds=SLOW_SWEEP,
        event_poll_seconds=SLOW_SWEEP,
        lock_backend="postgres",
        **more,
    )


@dataclass
class Worker:
    container: Container
    http: httpx.AsyncClient


@dataclass
class TwoWorkers:
    a: Worker
    b: Worker


def _app(container: Container) -> FastAPI:
    app = FastAPI()
    container.webchat.attach(app)
    return app


@asynccontextmanager
async def two_workers(tmp_path: Path, bus: str = "postgres") -> AsyncIterator[TwoWorkers]:
    """``bus``: ``postgres`` (the default on PostgreSQL) or ``redis`` (when configured)."""
    if bus == "redis":
        await require_redis()
    redis = {"redis_url": REDIS_URL, "bus_prefix": f"test-{uuid.uuid4().hex[:8]}:"} if bus == "redis" else {}
    async with fresh_databases(2, "sealbot_workers") as (bot_url, platform_url):
        workers: list[Worker] = []
        try:
            for name in ("a", "b"):
                settings = worker_settings(bot_url, platform_url, tmp_path / name, **redis)
                container = await build_container(settings)
                await container.start()
                transport = httpx.ASGITransport(app=_app(container))
                workers.append(
                    Worker(container, httpx.AsyncClient(transport=transport, base_url="http://bot"))
                )
            a, b = workers
            assert isinstance(a.container.bus, RedisBus if bus == "redis" else PostgresBus)
            assert a.container.bus.healthy
            assert b.container.bus.healthy
            yield TwoWorkers(a, b)
        finally:
            for worker in workers:
                await worker.http.aclose()
                await worker.container.stop()


async def _same_chat_on_both(workers: TwoWorkers) -> None:
    """The browser's cookie, issued by A, is presented to B (the proxy spreads requests)."""
    await workers.a.http.get("/chat")
    workers.b.http.cookies.update(workers.a.http.cookies)


@pytest.mark.parametrize("bus", ["postgres", "redis"])
async def test_a_long_poll_on_b_wakes_when_a_reply_is_delivered_on_a(tmp_path: Path, bus: str) -> None:
    async with two_workers(tmp_path, bus) as workers:
        a, b = workers.a, workers.b
        await b.container.dispatcher.stop()  # only A delivers
        await _same_chat_on_both(workers)
        loop = asyncio.get_running_loop()
        poll = asyncio.create_task(
            b.http.get("/chat/api/messages", params={"after": 0, "wait": 20}, timeout=30)
        )
        await asyncio.sleep(0.5)  # B holds the poll
        assert not poll.done()
        sent_at = loop.time()
        answer = await a.http.post("/chat/api/send", json={"client_id": "cross-0001", "text": "菜单"})
        assert answer.status_code == 200
        replies = await asyncio.wait_for(poll, 10)
        waited = loop.time() - sent_at
    assert replies.status_code == 200
    assert replies.json()["messages"], "B's poll returned without the reply"
    assert waited < 5.0, f"B's poll answered after {waited:.1f} s: its sweep, not the bus"
    assert a.container.dispatcher.sent >= 1
    assert b.container.dispatcher.sent == 0


async def test_the_support_inbox_on_b_hears_of_a_ticket_opened_on_a(tmp_path: Path) -> None:
    async with two_workers(tmp_path) as workers:
        a, b = workers.a, workers.b
        await _same_chat_on_both(workers)
        version = b.container.support.feed.version
        changed = asyncio.create_task(b.container.support.feed.wait_beyond(version, SLOW_SWEEP))
        await asyncio.sleep(0.2)
        answer = await a.http.post("/chat/api/send", json={"client_id": "cross-0002", "text": "人工"})
        assert answer.status_code == 200
        assert await asyncio.wait_for(changed, 5) > version
        tickets = await b.container.support.open_tickets()
    assert len(tickets) == 1
    assert tickets[0].conversation.startswith("web:")


async def test_a_platform_event_committed_on_a_is_read_by_the_consumer_on_b(tmp_path: Path) -> None:
    async with two_workers(tmp_path) as workers:
        a, b = workers.a, workers.b
        await a.container.events.stop()  # only B's consumer reads the feed
        platform = a.container.platform_services
        assert platform is not None
        loop = asyncio.get_running_loop()
        async with platform.db.session() as session:
            event = publish(session, None, "test.cross_worker", {})
            await session.commit()
        committed_at = loop.time()
        deadline = committed_at + 10
        while await b.container.store.cursor(CURSOR) < event.id:
            assert loop.time() < deadline, "B's consumer did not read the event"
            await asyncio.sleep(0.1)
        waited = loop.time() - committed_at
    # the platform's feed holds an event back for 3 s on PostgreSQL; B reads it right after
    assert waited < 6.0, f"B read the event after {waited:.1f} s: its poll, not the bus"
