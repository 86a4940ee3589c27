"""One message at a time per conversation, within a process and across processes.

``KeyedLocks`` serialises handling inside one process (asyncio locks per key, dropped when
unused). Across workers a ``DistributedLock`` is taken as well: a PostgreSQL advisory lock held
on a dedicated connection, or a Redis lock. The version check on write (``store.commit``)
stays as the last guard should a lock ever be lost.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.engine.messages import ConversationKey
from bot.errors import StorageError


class DistributedLock(Protocol):
    def hold(self, key: ConversationKey) -> AbstractAsyncContextManager[None]: ...

    async def close(self) -> None: ...


class KeyedLocks:
    def __init__(self) -> None:
        self._locks: dict[ConversationKey, asyncio.Lock] = {}
        self._users: dict[ConversationKey, int] = {}

    @asynccontextmanager
    async def hold(self, key: ConversationKey) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] = self._users.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._users[key] -= 1
            if self._users[key] == 0:
                del self._users[key]
                del self._locks[key]

    def __len__(self) -> int:
        return len(self._locks)


def lock_id(key: ConversationKey) -> int:
    """A stable signed 64-bit id for pg_advisory_lock."""
    digest = hashlib.blake2b(str(key).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PostgresAdvisoryLock:
    """Session-level advisory lock on a connection of its own, held while one message is
    handled (which may include platform calls, so a transaction-level lock would not do).

    The lock connections come from a pool separate from the store's: were they taken from the
    store's pool, as many concurrent conversations as the pool has connections would each hold
    a lock connection and wait forever for a connection to load their state.
    """

    def __init__(self, engine: AsyncEngine, *, pool_size: int = 20, pool_timeout: float = 60.0) -> None:
        self.engine = engine
        self._lock_engine = create_async_engine(
            engine.url, pool_size=pool_size, max_overflow=0, pool_timeout=pool_timeout, pool_pre_ping=True
        )

    @asynccontextmanager
    async def hold(self, key: ConversationKey) -> AsyncIterator[None]:
        ident = lock_id(key)
        try:
            conn = await self._lock_engine.connect()
        except (OSError, sa.exc.SQLAlchemyError) as exc:
            raise StorageError("postgres lock connection unavailable") from exc
        released = False
        try:
            await conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": ident})
            await conn.commit()
            try:
                yield
            finally:
                await conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": ident})
                await conn.commit()
                released = True
        finally:
            if not released:
                # Cancelled or failed while locking or unlocking: the session may still hold
                # the lock, and a pooled connection would keep it forever. Closing the
                # session for good is what releases a session-level lock.
                await conn.invalidate()
            await conn.close()

    async def close(self) -> None:
        await self._lock_engine.dispose()


_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end
"""


class RedisLock:
    """SET NX PX with a token and a compare-and-delete release; the TTL bounds a crashed
    holder's lock (the version check catches a handler that outlives it)."""

    def __init__(self, url: str, *, ttl_ms: int = 30_000, poll_s: float = 0.01) -> None:
        import redis.asyncio as aioredis

        self.client = aioredis.from_url(url)
        self.ttl_ms = ttl_ms
        self.poll_s = poll_s

    @asynccontextmanager
    async def hold(self, key: ConversationKey) -> AsyncIterator[None]:
        name = f"sealbot:lock:{key}"
        token = uuid.uuid4().hex
        try:
            # Redis has no wait-for-release primitive here; polling is bounded by the TTL.
            while not await self.client.set(name, token, nx=True, px=self.ttl_ms):  # noqa: ASYNC110
                await asyncio.sleep(self.poll_s)
        except OSError as exc:
            raise StorageError("redis lock unavailable") from exc
        try:
            yield
        finally:
            await self.client.eval(_RELEASE, 1, name, token)

    async def close(self) -> None:
        await self.client.aclose()


class ConversationLocks:
    def __init__(self, distributed: DistributedLock | None = None) -> None:
        self.local = KeyedLocks()
        self.distributed = distributed

    @asynccontextmanager
    async def hold(self, key: ConversationKey) -> AsyncIterator[None]:
        async with self.local.hold(key):
            if self.distributed is None:
                yield
            else:
                async with self.distributed.hold(key):
                    yield
