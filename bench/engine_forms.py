"""The form on our engine, with durable state: SQLite (WAL) in a temporary directory, every
reply committed with the state before it is delivered through the outbox."""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.workload import (
    BadAnswer,
    UserScript,
    as_the_service_runs,
    run_users,
    valid_credit_code,
    valid_id_number,
    valid_phone,
    valid_text,
)
from bot.engine.context import Ctx
from bot.engine.flow import Action, Choice, Field, Finish, Flow, FlowRegistry, Invalid, Summary
from bot.engine.i18n import Catalog
from bot.engine.media import MemoryMediaStore
from bot.engine.messages import ConversationKey, Inbound, InboundKind, Option, OutboundMessage
from bot.engine.outbox import OutboxDispatcher
from bot.engine.runtime import Engine
from bot.engine.secrets_box import SecretBox
from bot.engine.sqlite_store import SqliteConversationStore
from bot.gc_settings import CollectorPauses
from bot.testing import ENGINE_LOCALES, create_schema
from dbkit.engine import make_engine

LOCALES = Path(__file__).parent / "locales"


def _parser(check: Callable[[str], str], error: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        try:
            return check(text)
        except BadAnswer as exc:
            raise Invalid(error) from exc

    return parse


async def _submitted(ctx: Ctx) -> Finish:
    ctx.say("benchform.submitted")
    return Finish(show_home=False)


APPLY = Flow(
    name="apply",
    version=1,
    title="benchform.title",
    steps=(
        Field("company", prompt="benchform.ask_company", label="benchform.company", parse=valid_text),
        Field(
            "credit_code",
            prompt="benchform.ask_credit_code",
            label="benchform.credit_code",
            parse=_parser(valid_credit_code, "benchform.bad_credit_code"),
        ),
        Field("legal_rep", prompt="benchform.ask_legal_rep", label="benchform.legal_rep", parse=valid_text),
        Field(
            "legal_rep_id",
            prompt="benchform.ask_legal_rep_id",
            label="benchform.legal_rep_id",
            parse=_parser(valid_id_number, "benchform.bad_id"),
            sensitive=True,
        ),
        Field(
            "phone",
            prompt="benchform.ask_phone",
            label="benchform.phone",
            parse=_parser(valid_phone, "benchform.bad_phone"),
            sensitive=True,
        ),
        Choice(
            "years",
            prompt="benchform.ask_years",
            label="benchform.years",
            options=tuple(Option(y, f"benchform.year_{y}") for y in ("1", "2", "3")),
        ),
        Field("recipient", prompt="benchform.ask_recipient", label="benchform.recipient", parse=valid_text),
        Field("address", prompt="benchform.ask_address", label="benchform.address", parse=valid_text),
        Summary("confirm"),
        Action("submit", run=_submitted),
    ),
)


class NullSender:
    """A channel that accepts every message at once (the network answered in memory)."""

    channel = "telegram"

    def __init__(self) -> None:
        self.sent = 0

    async def send(self, message: OutboundMessage) -> None:
        self.sent += 1


def build_engine(store: Any) -> Engine:
    """The engine of the service with the form's flow, on ``store``."""
    return Engine(
        store=store,
        flows=FlowRegistry([APPLY]),
        catalog=Catalog([ENGINE_LOCALES, LOCALES]),
        box=SecretBox("bench-secret"),
        media=MemoryMediaStore(),
    )


def inbound_messages(user_scripts: list[UserScript]) -> dict[tuple[int, int], Inbound]:
    """Every message of the run, built before the clock starts: (user, index) -> message."""
    return {
        (s.user, i): Inbound(
            key=ConversationKey("telegram", "bench", str(s.user)),
            message_id=f"{s.user}:{i}",
            kind=InboundKind.COMMAND if text.startswith("/") else InboundKind.TEXT,
            text=text,
        )
        for s in user_scripts
        for i, text in enumerate(s.messages)
    }


async def run(user_scripts: list[UserScript], *, concurrency: int) -> dict[str, Any]:
    """The engine as ``sealbot serve`` runs it: this store, this dispatcher, and the garbage
    collector set as the service sets it."""
    with as_the_service_runs():
        return await _run(user_scripts, concurrency=concurrency)


async def _run(user_scripts: list[UserScript], *, concurrency: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="sealbot-bench-") as tmp:
        db_path = Path(tmp) / "bench.db"
        db = make_engine(f"sqlite+aiosqlite:///{db_path}")
        await create_schema(db)
        # the store the service uses on SQLite: group commit on the event loop's thread
        store = SqliteConversationStore(db)
        engine = build_engine(store)
        sender = NullSender()
        dispatcher = OutboxDispatcher(store, {"telegram": sender}, engine.clock, batch=200, idle_poll=0.05)
        engine.hooks.after_commit.append(dispatcher.kick)

        inbound = inbound_messages(user_scripts)
        replies = 0

        async def send(user: int, index: int, _text: str) -> None:
            nonlocal replies
            answered = await engine.handle(inbound[(user, index)])
            replies += len(answered)  # after the await: ``+=`` across an await loses counts

        await dispatcher.start()
        writer_before = store.writer_usage()
        collector = CollectorPauses()
        collector.start()
        loop_cpu_before = time.thread_time()
        started = time.perf_counter()
        await run_users(user_scripts, send, concurrency=concurrency)
        # Done when every reply has been delivered; the dispatcher has no completion event.
        while sender.sent < replies:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - started
        loop_cpu = time.thread_time() - loop_cpu_before
        gc_seconds = collector.stop()
        writer = store.writer_usage() - writer_before
        await dispatcher.stop()
        await store.close()

        stored = await _bytes_stored(db)
        await db.dispose()
        file_bytes = sum(p.stat().st_size for p in Path(tmp).iterdir())  # noqa: ASYNC240 - after timing
    return {
        "messages": len(inbound),
        "replies": replies,
        "seconds": elapsed,
        "bytes_per_conversation": stored / len(user_scripts),
        "file_bytes_per_conversation": file_bytes / len(user_scripts),
        # where the run's time went: the event loop's CPU, of it the store's SQLite batches run
        # on the loop, and the store's writer thread busy (holding or waiting for the GIL, or
        # inside SQLite) against its own CPU
        "loop_cpu_seconds": loop_cpu,
        "store_loop_seconds": writer.loop_seconds,
        "gc_seconds": gc_seconds,
        "writer_busy_seconds": writer.busy_seconds,
        "writer_cpu_seconds": writer.cpu_seconds,
    }


async def _bytes_stored(db: Any) -> int:
    """Bytes of the rows a conversation leaves: its state JSON, its inbound receipts and its
    outbox rows (every column's stored length, as SQLite's length(CAST(.. AS BLOB)))."""

    def blob(column: str) -> str:
        return f"coalesce(length(CAST({column} AS BLOB)), 0)"

    queries = {
        "conversations": "channel account user_id version state owner platform_account_id flow "
        "wait_deadline created_at updated_at last_inbound_at",
        "inbound_receipts": "conversation_id message_id kind body reply_ids received_at",
        "outbox": "conversation_id channel origin payload status attempts next_attempt_at lease_until "
        "in_reply_to created_at sent_at last_error",
    }
    total = 0
    async with db.connect() as conn:
        for table, columns in queries.items():
            expr = " + ".join(blob(c) for c in columns.split())
            total += int((await conn.execute(sa.text(f"SELECT sum({expr}) FROM {table}"))).scalar() or 0)  # noqa: S608
    return total
