"""One holder per conversation in a process, handed over in arrival order."""

from __future__ import annotations

import asyncio

import pytest

from bot.engine.locks import ConversationLocks, KeyedLocks
from bot.engine.messages import ConversationKey

A = ConversationKey("telegram", "main", "1")
B = ConversationKey("telegram", "main", "2")


async def test_waiters_get_a_conversation_in_the_order_they_asked() -> None:
    locks = ConversationLocks()
    order: list[int] = []
    gate = asyncio.Event()

    async def handle(n: int) -> None:
        async with locks.hold(A):
            if n == 0:
                await gate.wait()  # the others queue up behind the first
            order.append(n)

    tasks = [asyncio.create_task(handle(n)) for n in range(5)]
    await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3, 4]
    assert len(locks.local) == 0  # nothing is kept for a conversation nobody holds


async def test_two_conversations_do_not_wait_for_each_other() -> None:
    locks = KeyedLocks()
    await locks.acquire(A)
    await asyncio.wait_for(locks.acquire(B), timeout=1)
    locks.release(B)
    locks.release(A)
    assert len(locks) == 0


async def test_a_cancelled_waiter_is_skipped_and_the_next_one_gets_the_conversation() -> None:
    locks = KeyedLocks()
    await locks.acquire(A)
    cancelled = asyncio.create_task(locks.acquire(A))
    next_one = asyncio.create_task(locks.acquire(A))
    await asyncio.sleep(0)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    locks.release(A)
    await asyncio.wait_for(next_one, timeout=1)
    locks.release(A)
    assert len(locks) == 0


async def test_a_waiter_cancelled_just_as_it_was_handed_the_conversation_passes_it_on() -> None:
    locks = KeyedLocks()
    await locks.acquire(A)
    first = asyncio.create_task(locks.acquire(A))
    second = asyncio.create_task(locks.acquire(A))
    await asyncio.sleep(0)
    locks.release(A)  # handed to ``first``, which has not run yet
    first.cancel()  # ... and is cancelled before it does
    with pytest.raises(asyncio.CancelledError):
        await first
    await asyncio.wait_for(second, timeout=1)  # not lost: ``second`` holds it now
    locks.release(A)
    assert len(locks) == 0
