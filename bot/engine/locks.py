"""One message at a time per conversation, within a process and across processes.

``KeyedLocks`` serialises handling inside one process (asyncio locks per key, dropped when
unused). Across workers a ``DistributedLock`` is taken as well: a PostgreSQL advisory lock held
on a dedicated connection, or a Redis lock renewed while held. The version check on write
(``store.commit``) stays as the last guard should a lock ever be lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

import sqlalchemy as sa
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from bot.engine.messages import ConversationKey
from bot.errors import StorageError

log = logging.getLogger(__name__)


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

    An advisory lock has no expiry: it lives exactly as long as its session. What is renewed
    while it is held is the session itself: every ``keepalive_s`` a ``SELECT 1`` on the lock
    connection keeps idle-session timeouts and middleboxes from closing it, and notices when
    the connection is gone (the lock with it), which is logged once; the store's version check
    then guards the write.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        pool_size: int = 20,
        pool_timeout: float = 60.0,
        keepalive_s: float = 10.0,
    ) -> None:
        self.engine = engine
        self.keepalive_s = keepalive_s
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
            keepalive = asyncio.create_task(self._keep_alive(conn, key))
            try:
                yield
            finally:
                await _stop(keepalive)
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

    async def _keep_alive(self, conn: AsyncConnection, key: ConversationKey) -> None:
        while True:
            await asyncio.sleep(self.keepalive_s)
            try:
                await conn.execute(sa.text("SELECT 1"))
                await conn.commit()
            except (OSError, sa.exc.SQLAlchemyError) as exc:
                log.warning("advisory lock of %s lost with its connection (%s)", key, exc)
                return

    async def close(self) -> None:
        await self._lock_engine.dispose()


_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end
"""
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end
"""


class RedisLock:
    """SET NX PX with a token, renewed while held, released by compare-and-delete.

    The TTL only bounds the lock of a holder that died: while the holder lives, a renewal every
    third of the TTL extends it, so a message that waits on a slow platform for longer than the
    TTL keeps its lock (before, the lock expired mid-message and a second worker took the
    conversation, which ended in a version conflict and "this button has expired").

    Redis is an optimisation over the store's version check, not its replacement. When Redis is
    unreachable, messages are handled under the in-process lock only, and the version check
    guards concurrent writers: the user gets the real answer, never a bare 500. The outage is
    logged once when it starts and once when it ends, not per message.
    """

    def __init__(
        self,
        url: str,
        *,
        ttl_ms: int = 30_000,
        poll_s: float = 0.01,
        prefix: str = "sealbot:lock:",
        timeout_s: float = 2.0,
    ) -> None:
        import redis.asyncio as aioredis

        # Short socket timeouts: an unreachable Redis must cost a message seconds, not minutes.
        self.client = aioredis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
        self.ttl_ms = ttl_ms
        self.poll_s = poll_s
        self.prefix = prefix
        self._down = False

    @asynccontextmanager
    async def hold(self, key: ConversationKey) -> AsyncIterator[None]:
        name = f"{self.prefix}{key}"
        token = uuid.uuid4().hex
        try:
            await self._acquire(name, token)
        except (RedisError, OSError) as exc:
            self._lost(exc)
            acquired = False
        else:
            self._back()
            acquired = True
        if not acquired:
            yield  # the in-process lock is held by the caller; the version check guards
            return
        renewer = asyncio.create_task(self._renew(name, token))
        try:
            yield
        finally:
            await _stop(renewer)
            try:
                await self.client.eval(_RELEASE, 1, name, token)
            except (RedisError, OSError) as exc:
                self._lost(exc)  # the TTL frees the key

    async def _acquire(self, name: str, token: str) -> None:
        # Redis has no wait-for-release primitive here; polling is bounded by the TTL.
        while not await self.client.set(name, token, nx=True, px=self.ttl_ms):  # noqa: ASYNC110
            await asyncio.sleep(self.poll_s)

    async def _renew(self, name: str, token: str) -> None:
        while True:
            await asyncio.sleep(self.ttl_ms / 3000)
            try:
                renewed = await self.client.eval(_RENEW, 1, name, token, self.ttl_ms)
            except (RedisError, OSError) as exc:
                self._lost(exc)
                continue
            if not renewed:
                log.warning("redis lock %s was lost while held; the version check guards the write", name)
                return

    def _lost(self, exc: BaseException) -> None:
        if not self._down:
            self._down = True
            log.error(
                "redis lock server unreachable (%s): handling messages under the in-process lock "
                "only, the store's version check guards concurrent workers, until it is back",
                exc,
            )

    def _back(self) -> None:
        if self._down:
            self._down = False
            log.warning("redis lock server reachable again")

    async def close(self) -> None:
        await self.client.aclose()


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


class ConversationLocks:
    def __init__(
        self,
        distributed: DistributedLock | None = None,
        *,
        observe_wait: Callable[[float], None] | None = None,
    ) -> None:
        """``observe_wait`` is told how long each hold waited for its locks (metrics)."""
        self.local = KeyedLocks()
        self.distributed = distributed
        self._observe_wait = observe_wait

    @asynccontextmanager
    async def hold(self, key: ConversationKey) -> AsyncIterator[None]:
        asked = time.perf_counter()
        async with self.local.hold(key):
            if self.distributed is None:
                self._waited(asked)
                yield
            else:
                async with self.distributed.hold(key):
                    self._waited(asked)
                    yield

    def _waited(self, asked: float) -> None:
        if self._observe_wait is not None:
            self._observe_wait(time.perf_counter() - asked)
