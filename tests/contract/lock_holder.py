"""A worker that takes one conversation lock and then waits to be killed (``kill -9``).

Run as ``python -m tests.contract.lock_holder {redis|postgres} URL PREFIX USER``; it prints
``held`` once the lock is taken. A killed holder runs no ``finally``: what frees its lock is
the backend alone (Redis's TTL, PostgreSQL ending the dead session).
"""

from __future__ import annotations

import asyncio
import sys

from bot.engine.locks import DistributedLock, PostgresAdvisoryLock, RedisLock
from bot.engine.messages import ConversationKey
from dbkit.engine import make_engine


async def hold_forever(kind: str, url: str, prefix: str, user: str) -> None:
    lock: DistributedLock
    if kind == "redis":
        lock = RedisLock(url, ttl_ms=1000, prefix=prefix)
    else:
        lock = PostgresAdvisoryLock(make_engine(url), pool_size=1)
    async with lock.hold(ConversationKey("contract", prefix, user)):
        print("held", flush=True)
        await asyncio.sleep(3600)


if __name__ == "__main__":
    asyncio.run(hold_forever(*sys.argv[1:5]))
