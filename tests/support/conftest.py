"""A desk on a real engine and SQLite store, with the engine's test flow (FORM)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.engine.flow import FlowRegistry
from bot.engine.messages import ConversationKey
from bot.support.models import SUPPORT_TABLES, SupportAudit
from bot.support.service import SupportDesk
from bot.support.settings import SupportSettings
from bot.support.wiring import attach_hooks
from bot.testing import ChatHarness
from tests.engine.flows_for_tests import FORM

ENGINE_TEST_LOCALES = Path(__file__).parent.parent / "engine" / "locales"
EVERY_DAY = frozenset(range(1, 8))


def desk_settings(**overrides: object) -> SupportSettings:
    values: dict[str, object] = {
        "office_days": EVERY_DAY,
        "office_opens": time(0, 0),
        "office_closes": time(23, 59),
        "escalation_minutes": 10,
        "idle_handback_minutes": 30,
        "minutes_per_conversation": 5,
    }
    values.update(overrides)
    return SupportSettings(**values)  # type: ignore[arg-type]


async def create_support_tables(engine: object) -> None:
    async with engine.begin() as conn:  # type: ignore[attr-defined]
        for table in SUPPORT_TABLES:
            await conn.run_sync(lambda sync, t=table: t.create(sync, checkfirst=True))


@dataclass
class DeskRig:
    chat: ChatHarness
    desk: SupportDesk

    def key(self, user: str = "u1") -> ConversationKey:
        return self.chat.key(user)

    async def settle(self) -> None:
        await self.chat.dispatcher.drain()

    async def owner(self, user: str = "u1") -> str:
        return await self.chat.store.owner_of(self.key(user))

    async def audit_actions(self, user: str = "u1") -> list[tuple[str, str]]:
        async with self.desk.sessions() as session:
            rows = await session.scalars(
                sa.select(SupportAudit)
                .where(SupportAudit.conversation == str(self.key(user)))
                .order_by(SupportAudit.id)
            )
            return [(r.actor, r.action) for r in rows]


async def make_rig(db_url: str, settings: SupportSettings) -> DeskRig:
    chat = await ChatHarness.create(
        flows=FlowRegistry([FORM]), db_url=db_url, catalog_dirs=[ENGINE_TEST_LOCALES]
    )
    db = chat.store.engine  # type: ignore[attr-defined]
    await create_support_tables(db)
    desk = SupportDesk(engine=chat.engine, store=chat.store, db=db, settings=settings, clock=chat.clock)  # type: ignore[arg-type]
    attach_hooks(chat.engine, desk)
    return DeskRig(chat, desk)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/bot.db"


@pytest.fixture
async def rig(db_url: str) -> AsyncIterator[DeskRig]:
    built = await make_rig(db_url, desk_settings())
    yield built
    await built.chat.close()
