"""One message at a time per conversation, within a process and across processes.

``KeyedLocks`` serialises handling inside one process (asyncio locks per key, dropped when
unused). Across workers a ``DistributedLock`` is taken as well: a PostgreSQL advisory lock held
on a dedicated connection, or a Redis lock renewed while held. The version check on write
(``store.commit``) stays as the last guard should a lock ever be lost.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import Any, Protocol

import sqlalchemy as sa
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.engine.messages import ConversationKey
from bot.errors import StorageError
from dbkit.engine import make_engine

log = logging.getLogger(__name__)


class DistributedLock(Protocol):
    def hold(self, key: ConversationKey) -> AbstractAsyncContextManager[None]: ...

    async def close(self) -> None: ...


class KeyedLocks:
    """One holder per key at a time, handed over in arrival order (a conversation's messages
    are handled in the order they came). A key has an entry only while it is held or waited
    for, so a million conversations that come and go leave nothing behind."""

    def __init__(self) -> None:
        # key -> who waits behind its holder; the key is held while it has an entry
        self._waiting: dict[ConversationKey, deque[asyncio.Future[None]]] = {}

    async def acquire(self, key: ConversationKey) -> None:
        waiters = self._waiting.get(key)
        if waiters is None:
            self._waiting[key] = deque()
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release(key)  # handed over just as the waiter was cancelled: pass it on
            else:
                waiters.remove(waiter)
            raise

    def release(self, key: ConversationKey) -> None:
        waiters = self._waiting[key]
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the key stays held: handed straight to this waiter
                return
        del self._waiting[key]

    def __len__(self) -> int:
        return len(self._waiting)


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
        # Session-level advisory locks need no transaction: in autocommit each lock, unlock and
        # keep-alive is one round trip, not three (BEGIN ... COMMIT). A connection is pinged
        # only after it sat idle, as every engine of the service (``dbkit.engine``).
        self._lock_engine = make_engine(
            engine.url.render_as_string(hide_password=False),
            pool_size=pool_size,
            max_overflow=0,
            pool_timeout=pool_timeout,
            isolation_level="AUTOCOMMIT",
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

    Every Redis command runs in a task of its own that the caller awaits through
    ``asyncio.shield``. redis-py sends with ``asyncio.wait_for``, which on Python 3.11 drops a
    cancellation that arrives as the send completes (CPython gh-86296): a waiter cancelled at
    that moment went on polling, took the lock once it was free and carried on as if never
    cancelled, while whoever cancelled it waited on it, holding the lock. Through the shield the
    caller's cancellation always arrives; the command finishes on its own, and a SET that won
    the lock for a caller already gone is released by its token.
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
        self.timeout_s = timeout_s
        self._down = False
        # Commands and releases that outlive a cancelled caller; kept so they are not collected
        # mid-flight and so ``close`` can let them finish.
        self._pending: set[asyncio.Task[Any]] = set()

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
            try:
                await _stop(renewer)
            finally:
                await self._release(name, token)

    async def _acquire(self, name: str, token: str) -> None:
        # Redis has no wait-for-release primitive here; polling is bounded by the TTL.
        while True:
            setting = self._command(self.client.set(name, token, nx=True, px=self.ttl_ms))
            try:
                taken = await asyncio.shield(setting)
            except asyncio.CancelledError:
                # The SET may have taken the lock, or may still: free it once it is done, in
                # the background, so that cancelling never waits on Redis.
                self._command(self._release_when_taken(setting, name, token))
                raise
            if taken:
                return
            await asyncio.sleep(self.poll_s)

    async def _release_when_taken(self, setting: asyncio.Task[Any], name: str, token: str) -> None:
        await asyncio.wait({setting})
        if setting.cancelled() or setting.exception() is not None or not setting.result():
            return
        await self._release(name, token)

    async def _release(self, name: str, token: str) -> None:
        try:
            await asyncio.shield(self._command(self.client.eval(_RELEASE, 1, name, token)))
        except (RedisError, OSError) as exc:
            self._lost(exc)  # the TTL frees the key

    async def _renew(self, name: str, token: str) -> None:
        while True:
            await asyncio.sleep(self.ttl_ms / 3000)
            try:
                renewed = await asyncio.shield(
                    self._command(self.client.eval(_RENEW, 1, name, token, self.ttl_ms))
                )
            except (RedisError, OSError) as exc:
                self._lost(exc)
                continue
            if not renewed:
                log.warning("redis lock %s was lost while held; the version check guards the write", name)
                return

    def _command(self, call: Awaitable[Any]) -> asyncio.Task[Any]:
        """``call`` in a task of its own, kept until it is done (a command, or a release)."""
        task = asyncio.ensure_future(call)
        self._pending.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._pending.discard(task)
        if not task.cancelled():
            # Retrieved here because its awaiter may have been cancelled; an awaiter that is
            # still there gets the same exception through the shield.
            task.exception()

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
        # Releases of cancelled waiters are bounded by the socket timeout; let them land.
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=2 * self.timeout_s)
        await self.client.aclose()


async def _stop(task: asyncio.Task[None]) -> None:
    """Cancel a helper task and wait for it to end.

    A cancellation of the caller while it waits is not swallowed (it propagates; the helper,
    already cancelled, ends on its own)."""
    task.cancel()
    await asyncio.wait({task})
    if not task.cancelled() and task.exception() is not None:
        log.error("lock helper task failed", exc_info=task.exception())


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

    def hold(self, key: ConversationKey) -> _Hold:
        return _Hold(self, key)

    def _waited(self, asked: float) -> None:
        if self._observe_wait is not None:
            self._observe_wait(time.perf_counter() - asked)


class _Hold:
    """``ConversationLocks.hold``: a class rather than a generator-based context manager
    because it is entered for every message, and this costs a third as much."""

    __slots__ = ("_distributed", "_key", "_locks")

    def __init__(self, locks: ConversationLocks, key: ConversationKey) -> None:
        self._locks = locks
        self._key = key
        self._distributed: AbstractAsyncContextManager[None] | None = None

    async def __aenter__(self) -> None:
        locks = self._locks
        asked = time.perf_counter()
        await locks.local.acquire(self._key)
        if locks.distributed is not None:
            held = locks.distributed.hold(self._key)
            try:
                await held.__aenter__()
            except BaseException:
                locks.local.release(self._key)
                raise
            self._distributed = held
        locks._waited(asked)

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        try:
            if self._distributed is not None:
                await self._distributed.__aexit__(kind, error, trace)
        finally:
            self._locks.local.release(self._key)
