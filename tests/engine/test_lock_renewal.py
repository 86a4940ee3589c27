"""Cross-worker locks outlive their TTL while held, and a Redis outage is not the user's problem."""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.engine.flow import FlowRegistry
from bot.engine.locks import ConversationLocks, RedisLock
from bot.engine.messages import ConversationKey, Inbound
from bot.testing import ChatHarness
from tests.engine.conftest import LOCALES
from tests.engine.flows_for_tests import FORM
from tests.engine.transcript import Lang

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def redis_lock() -> AsyncIterator[RedisLock]:
    lock = RedisLock(REDIS_URL, ttl_ms=300, prefix=f"sealbot-test-{uuid.uuid4().hex[:8]}:lock:")
    try:
        await lock.client.ping()
    except OSError as exc:  # pragma: no cover - the machine's Redis is part of the test setup
        pytest.fail(f"Redis at {REDIS_URL} is needed: {exc!r}")
    yield lock
    await lock.close()


def _dead_redis_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"  # nothing listens there any more


async def test_a_redis_lock_held_longer_than_its_ttl_stays_held(redis_lock: RedisLock) -> None:
    key = ConversationKey("telegram", "bot", "u-renew")
    name = f"{redis_lock.prefix}{key}"
    async with redis_lock.hold(key):
        await asyncio.sleep(1.0)  # more than three TTLs of 300 ms
        holder = await redis_lock.client.get(name)
        assert holder is not None
        # A second worker cannot take it.
        assert not await redis_lock.client.set(name, "intruder", nx=True, px=1000)
    assert await redis_lock.client.get(name) is None


async def test_a_second_worker_waits_for_a_renewed_lock(redis_lock: RedisLock) -> None:
    key = ConversationKey("telegram", "bot", "u-order")
    other = RedisLock(REDIS_URL, ttl_ms=300, prefix=redis_lock.prefix)
    order: list[str] = []

    async def first() -> None:
        async with redis_lock.hold(key):
            order.append("first in")
            await asyncio.sleep(1.0)
            order.append("first out")

    async def second() -> None:
        await asyncio.sleep(0.1)
        async with other.hold(key):
            order.append("second in")

    try:
        await asyncio.gather(first(), second())
    finally:
        await other.close()
    assert order == ["first in", "first out", "second in"]


async def _replies(tmp_path: Path, lang: Lang, locks: ConversationLocks | None) -> list[str | None]:
    chat = await ChatHarness.create(
        flows=FlowRegistry([FORM]),
        db_url=f"sqlite+aiosqlite:///{tmp_path / uuid.uuid4().hex}.db",
        locks=locks,
        catalog_dirs=[LOCALES],
    )
    try:
        key = chat.key("u-redis-down")
        texts: list[str | None] = []
        for n, text in enumerate([lang.hello, lang.help]):
            replies = await chat.engine.handle(Inbound.text_message(key, f"m{n}", text, at=chat.clock.now()))
            texts += [m.reply.text for m in replies]
        return texts
    finally:
        await chat.close()


async def test_unreachable_redis_logs_once_and_the_user_still_gets_the_answer(
    lang: Lang, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    expected = await _replies(tmp_path, lang, None)
    with caplog.at_level(logging.ERROR, logger="bot.engine.locks"):
        got = await _replies(tmp_path, lang, ConversationLocks(RedisLock(_dead_redis_url(), timeout_s=0.5)))
    assert got == expected
    assert len(expected) >= 2
    outage_lines = [r for r in caplog.records if r.name == "bot.engine.locks" and r.levelno >= logging.ERROR]
    assert len(outage_lines) == 1
    assert "redis lock server unreachable" in outage_lines[0].getMessage()
