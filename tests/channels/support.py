"""An engine on a real SQLite store with the channels' real senders, as bot.app wires it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.engine.flow import Flow, FlowRegistry
from bot.engine.i18n import Catalog
from bot.engine.media import MemoryMediaStore
from bot.engine.outbox import OutboxDispatcher
from bot.engine.ports import Clock, SystemClock
from bot.engine.runtime import Engine, PassiveWindow
from bot.engine.secrets_box import SecretBox
from bot.engine.sqlite_store import SqliteConversationStore
from bot.engine.store import SqlConversationStore
from bot.testing import ENGINE_LOCALES, create_schema
from dbkit.engine import make_engine
from tests.engine.flows_for_tests import FORM

TEST_LOCALES = Path(__file__).parent.parent / "engine" / "locales"


@dataclass
class Stack:
    engine: Engine
    store: SqlConversationStore | SqliteConversationStore
    dispatcher: OutboxDispatcher
    media: MemoryMediaStore
    clock: Clock

    async def close(self) -> None:
        await self.dispatcher.stop()
        await self.store.close()
        await self.store.engine.dispose()


async def build_stack(
    db_url: str,
    *,
    flows: Sequence[Flow] = (FORM,),
    passive_windows: Sequence[PassiveWindow] = (),
    embedded: bool = False,
) -> Stack:
    """``embedded``: the group-commit store the service runs on SQLite, instead of the
    SQLAlchemy one."""
    db = make_engine(db_url)
    await create_schema(db)
    store = SqliteConversationStore(db) if embedded else SqlConversationStore(db)
    media = MemoryMediaStore()
    clock = SystemClock()
    engine = Engine(
        store=store,
        flows=FlowRegistry(list(flows)),
        catalog=Catalog([ENGINE_LOCALES, TEST_LOCALES], strict=True),
        box=SecretBox("test-secret"),
        media=media,
        clock=clock,
        passive_windows=passive_windows,
    )
    dispatcher = OutboxDispatcher(store, {}, clock, backoff_base=0.05, idle_poll=0.05)
    engine.hooks.after_commit.append(dispatcher.kick)
    return Stack(engine, store, dispatcher, media, clock)
