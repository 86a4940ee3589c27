"""One database of one side: its engine and a unit-of-work session factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dbkit.engine import make_engine


def utcnow() -> datetime:
    return datetime.now(UTC)


class Database:
    """Owns the engine; ``session()`` is one unit of work that commits or rolls back."""

    def __init__(self, url: str, **pool: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **pool)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
