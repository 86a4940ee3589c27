"""The lock contract: every conversation lock the bot ships keeps one message at a time.

The same tests run on the in-process lock, the PostgreSQL advisory lock and the Redis lock.
Each "worker" is a ``ConversationLocks`` of its own, as in two processes; the in-process lock
is shared by its workers, because it only ever excludes within one process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import suppress
from pathlib import Path

import pytest

from bot.engine.locks import ConversationLocks, PostgresAdvisoryLock, RedisLock
from bot.engine.messages import ConversationKey
from dbkit.engine import make_engine
from tests.contract.postgres import PG_URL, require_postgres

REDIS_URL = os.environ.get("SEALBOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
# Long enough that a lock which is not released on exit shows as a wait of seconds, not a blip.
REDIS_TTL_MS = 3000
# How soon a freed lock must be taken by the next worker (a generous bound for a busy machine,
# far below the TTL a missing release would cost).
AT_ONCE_S = 1.0
ROOT = Path(__file__).resolve().parents[2]

Worker = Callable[[], ConversationLocks]


@pytest.fixture(params=["in-process", pytest.param("postgres", marks=pytest.mark.postgres), "redis"])
async def workers(request: pytest.FixtureRequest) -> AsyncIterator[Worker]:
    """Makes the locks of one more worker on the backend under test."""
    made: list[ConversationLocks] = []
    prefix = f"sealbot-contract-{uuid.uuid4().hex[:8]}:lock:"
    engine = None
    if request.param == "postgres":
        await require_postgres()
        engine = make_engine(PG_URL)
    elif request.param == "redis":
        await _require_redis()
    shared = ConversationLocks()

    def worker() -> ConversationLocks:
        if request.param == "in-process":
            return shared
        if engine is not None:
            locks = ConversationLocks(PostgresAdvisoryLock(engine, pool_size=4))
        else:
            locks = ConversationLocks(RedisLock(REDIS_URL, ttl_ms=REDIS_TTL_MS, prefix=prefix))
        made.append(locks)
        return locks

    yield worker
    for locks in made:
        assert locks.distributed is not None
        await locks.distributed.close()
    if engine is not None:
        await engine.dispose()


async def _require_redis() -> None:
    probe = RedisLock(REDIS_URL, timeout_s=1.0)
    try:
        await probe.client.ping()
    except OSError as exc:
        pytest.fail(f"Redis at {REDIS_URL} is needed (.ci/run starts it): {exc!r}")
    finally:
        await probe.close()


def key(user: str = "u1") -> ConversationKey:
    return ConversationKey("contract", "bot", f"{user}-{uuid.uuid4().hex[:8]}")


async def taken_within(locks: ConversationLocks, conversation: ConversationKey, seconds: float) -> float:
    """Take and release the lock; fail when that takes longer than ``seconds``."""
    started = time.monotonic()

    async def take() -> None:
        async with locks.hold(conversation):
            pass

    await asyncio.wait_for(take(), seconds)
    return time.monotonic() - started


async def test_a_second_worker_waits_until_the_first_is_done(workers: Worker) -> None:
    first, second = workers(), workers()
    conversation = key()
    order: list[str] = []
    first_in = asyncio.Event()

    async def one() -> None:
        async with first.hold(conversation):
            order.append("first in")
            first_in.set()
            await asyncio.sleep(0.5)
            order.append("first out")

    async def two() -> None:
        await first_in.wait()
        async with second.hold(conversation):
            order.append("second in")

    await asyncio.gather(one(), two())
    assert order == ["first in", "first out", "second in"]


async def test_a_released_lock_is_taken_by_the_next_worker_at_once(workers: Worker) -> None:
    first, second = workers(), workers()
    conversation = key()
    async with first.hold(conversation):
        pass
    await taken_within(second, conversation, AT_ONCE_S)


async def test_a_holder_that_raises_releases_the_lock(workers: Worker) -> None:
    first, second = workers(), workers()
    conversation = key()
    with pytest.raises(RuntimeError, match="handler failed"):
        async with first.hold(conversation):
            raise RuntimeError("handler failed")
    await taken_within(second, conversation, AT_ONCE_S)


async def test_other_conversations_do_not_wait_for_a_held_one(workers: Worker) -> None:
    first, second = workers(), workers()
    busy = key("busy")
    async with first.hold(busy):
        await taken_within(second, key("other"), AT_ONCE_S)


async def test_a_waiter_that_is_cancelled_leaves_the_lock_free(workers: Worker) -> None:
    holder, waiter, third = workers(), workers(), workers()
    conversation = key()
    async with holder.hold(conversation):
        waiting = asyncio.create_task(taken_within(waiter, conversation, 30))
        await asyncio.sleep(0.2)
        waiting.cancel()
        with suppress(asyncio.CancelledError):
            await waiting
    await taken_within(third, conversation, AT_ONCE_S)


# Enough cancellations that a race hit about one time in twenty shows (RedisLock lost such a
# cancel: the waiter polled on, the canceller waited on it while holding the lock).
CANCELS = 50
# How soon a cancelled waiter must be gone. It waits on nothing but its own next poll, or for
# PostgreSQL on the server's answer to a CancelRequest, which arrives on a new connection the
# postmaster forks a process for: 6-9 ms here when quiet, over a second once under the full
# suite's load on two cores. The bugs this guards against kept a waiter for a lock's whole TTL
# (30 s), so three seconds still tells them apart.
CANCELLED_WITHIN_S = 3.0


async def _cancel_promptly(waiting: asyncio.Task[float], attempt: int) -> None:
    waiting.cancel()
    done, _ = await asyncio.wait({waiting}, timeout=CANCELLED_WITHIN_S)
    assert done, f"attempt {attempt}: a cancelled waiter was still running after {CANCELLED_WITHIN_S}s"
    assert waiting.cancelled(), f"attempt {attempt}: the waiter swallowed its cancellation"


def _lock_helpers_left() -> list[asyncio.Task[object]]:
    return [
        task
        for task in asyncio.all_tasks()
        if not task.done() and task.get_coro().__qualname__.endswith(("._renew", "._keep_alive"))  # type: ignore[union-attr]
    ]


async def test_waiters_cancelled_at_any_moment_of_their_polling_end_at_once(workers: Worker) -> None:
    holder, waiter, third = workers(), workers(), workers()
    conversation = key()
    async with holder.hold(conversation):
        for attempt in range(CANCELS):
            waiting = asyncio.create_task(taken_within(waiter, conversation, 30))
            # Spread over several poll intervals, so the cancel lands at every step of a poll.
            await asyncio.sleep((attempt % 10) * 0.003)
            await _cancel_promptly(waiting, attempt)
    await taken_within(third, conversation, AT_ONCE_S)
    assert _lock_helpers_left() == []


async def test_waiters_cancelled_as_the_lock_is_freed_leave_it_free(workers: Worker) -> None:
    """A cancel that meets the moment the waiter's take succeeds must not keep the lock taken
    (for Redis that would show as a wait of the whole TTL)."""
    holder, waiter, third = workers(), workers(), workers()
    for attempt in range(CANCELS):
        conversation = key()
        async with holder.hold(conversation):
            waiting = asyncio.create_task(taken_within(waiter, conversation, 30))
            await asyncio.sleep(0.02)
        await asyncio.sleep((attempt % 10) * 0.002)
        waiting.cancel()
        done, _ = await asyncio.wait({waiting}, timeout=CANCELLED_WITHIN_S)
        assert done, f"attempt {attempt}: a cancelled waiter was still running after {CANCELLED_WITHIN_S}s"
        await taken_within(third, conversation, AT_ONCE_S)
    assert _lock_helpers_left() == []


# -- a holder that dies: only the backend can free its lock ---------------------------------


def _start_holder(kind: str, url: str, prefix: str, user: str) -> subprocess.Popen[str]:
    holder = subprocess.Popen(  # noqa: S603 - our own module, test-chosen arguments
        [sys.executable, "-m", "tests.contract.lock_holder", kind, url, prefix, user],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    line = holder.stdout.readline()
    if line.strip() != "held":
        holder.kill()
        pytest.fail(f"the holder did not take the lock: {line!r}")
    return holder


@pytest.mark.parametrize("kind", [pytest.param("postgres", marks=pytest.mark.postgres), "redis"])
async def test_the_lock_of_a_killed_worker_is_freed_by_the_backend(kind: str) -> None:
    prefix = f"sealbot-contract-{uuid.uuid4().hex[:8]}:lock:"
    if kind == "postgres":
        await require_postgres()
        engine = make_engine(PG_URL)
        locks = ConversationLocks(PostgresAdvisoryLock(engine, pool_size=2))
        url, freed_within = PG_URL, 5.0  # the server notices the dead connection at once
    else:
        await _require_redis()
        engine = None
        locks = ConversationLocks(RedisLock(REDIS_URL, ttl_ms=REDIS_TTL_MS, prefix=prefix))
        url, freed_within = REDIS_URL, 1.0 + 3.0  # the holder's 1 s TTL, plus a busy machine
    conversation = ConversationKey("contract", prefix, "killed")
    holder = await asyncio.to_thread(_start_holder, kind, url, prefix, "killed")
    try:
        waiting = asyncio.create_task(taken_within(locks, conversation, 30 + freed_within))
        await asyncio.sleep(0.5)
        assert not waiting.done(), "the lock of a live holder was taken"
        holder.kill()
        killed_at = time.monotonic()
        await asyncio.to_thread(holder.wait)
        await waiting
        assert time.monotonic() - killed_at < freed_within
    finally:
        if holder.poll() is None:
            holder.kill()
        assert locks.distributed is not None
        await locks.distributed.close()
        if engine is not None:
            await engine.dispose()


# -- what only the Redis lock has: a TTL, renewal and a holder token --------------------------


@pytest.fixture
async def short_redis_lock() -> AsyncIterator[RedisLock]:
    await _require_redis()
    lock = RedisLock(REDIS_URL, ttl_ms=300, prefix=f"sealbot-contract-{uuid.uuid4().hex[:8]}:lock:")
    yield lock
    await lock.close()


async def test_redis_a_lock_held_for_three_ttls_is_renewed_and_stays_exclusive(
    short_redis_lock: RedisLock,
) -> None:
    other = ConversationLocks(RedisLock(REDIS_URL, ttl_ms=300, prefix=short_redis_lock.prefix))
    conversation = key()
    try:
        async with short_redis_lock.hold(conversation):
            with pytest.raises(TimeoutError):
                await taken_within(other, conversation, 1.0)  # more than three TTLs
        await taken_within(other, conversation, AT_ONCE_S)
    finally:
        assert other.distributed is not None
        await other.distributed.close()


async def test_redis_a_holder_whose_lock_was_lost_does_not_release_the_new_holders_lock(
    short_redis_lock: RedisLock, caplog: pytest.LogCaptureFixture
) -> None:
    conversation = key()
    name = f"{short_redis_lock.prefix}{conversation}"
    with caplog.at_level(logging.WARNING, logger="bot.engine.locks"):
        async with short_redis_lock.hold(conversation):
            # The lock's own key, as Redis leaves it when the holder stalled past its TTL and
            # another worker took the conversation (the test of the lock's own storage).
            await short_redis_lock.client.set(name, "the-new-holder", px=10_000)
            await asyncio.sleep(0.3)  # one renewal: it must find the lock gone, not steal it
    assert await short_redis_lock.client.get(name) == b"the-new-holder"
    assert any("was lost while held" in r.getMessage() for r in caplog.records)
    await short_redis_lock.client.delete(name)
