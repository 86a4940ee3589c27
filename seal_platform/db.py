"""The platform's own database: its declarative base (metadata) and its unit of work.

The platform keeps its data apart from the bot's (its own metadata and URL), which is what lets
it run in-process today and as a separate service tomorrow.

``Database.session()`` adds two rules to the shared plumbing:

- One connection per request. A session opened while the same task already has one open would
  take a second pooled connection; under load every request then holds one connection while
  waiting for another, and the pool deadlocks until its timeout (what 30 concurrent
  registrations did). Nesting is therefore refused at once with ``NestedSession``, a
  programming error that the platform's tests walk into if a code path ever does it.
- A saturated pool is ``PlatformBusy`` (HTTP 503, ``retry_after``) after the short
  ``database_pool_timeout_seconds``, not a 500 after SQLAlchemy's default 30 s: the bot tells
  the user at once that the system is busy.

Work that must wait for a commit and must not hold a connection (handing mail to the SMTP
server, ``mail_outbox``) runs as a ``follow_up`` task; ``settle`` awaits those still running,
and ``dispose`` settles first so that a stopping process finishes what it started.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import MetaData
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase

from dbkit import database as dbkit_database
from dbkit.database import utcnow
from dbkit.engine import NAMING_CONVENTION
from seal_platform.errors import PlatformBusy

__all__ = ["Base", "Database", "NestedSession", "utcnow"]

# The task that holds an open session. A task created meanwhile inherits the value but is a
# request of its own (its ``current_task`` differs), so only the same task counts as nesting.
_session_task: ContextVar[asyncio.Task[Any] | None] = ContextVar("seal_platform_session_task", default=None)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class NestedSession(RuntimeError):
    """A platform session was opened inside another one in the same task (see the module)."""


class Database(dbkit_database.Database):
    def __init__(self, url: str, *, pool_timeout_seconds: float = 30.0, **engine_options: Any) -> None:
        super().__init__(url, pool_timeout=pool_timeout_seconds, **engine_options)
        self.pool_timeout_seconds = pool_timeout_seconds
        self.follow_ups: set[asyncio.Task[None]] = set()

    def follow_up(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``work`` as a task of its own (kept referenced until done; see the module)."""
        task = asyncio.get_running_loop().create_task(work)
        self.follow_ups.add(task)
        task.add_done_callback(self.follow_ups.discard)
        return task

    async def settle(self) -> None:
        """Wait for the follow-up tasks, including those they start meanwhile."""
        while self.follow_ups:
            await asyncio.gather(*list(self.follow_ups), return_exceptions=True)

    async def dispose(self) -> None:
        await self.settle()
        await super().dispose()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        task = asyncio.current_task()
        if task is not None and _session_task.get() is task:
            raise NestedSession("a platform session is already open in this request")
        marker = _session_task.set(task)
        try:
            async with super().session() as session:
                yield session
        except sa_exc.TimeoutError as exc:
            # QueuePool's "limit reached, connection timed out": every connection is busy.
            raise PlatformBusy(
                "系统繁忙，请稍后再试", retry_after=max(1, round(self.pool_timeout_seconds))
            ) from exc
        finally:
            _session_task.reset(marker)
